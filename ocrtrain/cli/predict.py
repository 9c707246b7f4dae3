"""`ocrtrain predict [SOURCE] IMAGE_OR_FOLDER... [--model SPEC]`: read line images with a model."""
from __future__ import annotations

import json
from pathlib import Path

from ..config import add_config_arguments, config_from_args
from ..errors import InputError
from ..originspec import DEFAULT_ORIGIN, is_origin_spec
from ..readconfig import ReadConfig, resolve_read_device

__all__ = ["register", "run", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="read text-line images with a run or origin model",
        description="Print the text and EasyOCR-style confidence of each line image. The model is "
                    "--model, or a leading SOURCE argument (run folder or origin spec such as "
                    "english_g2, run:PATH@last, easyocr:DIR/NAME); folders are read non-recursively.",
    )
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="line images or folders of them")
    p.add_argument("--model", default=None, metavar="SPEC", help=f"run folder or origin spec (default: {DEFAULT_ORIGIN})")
    p.add_argument("--version", default="best", help="checkpoint of a run folder: best, last or step-N")
    add_config_arguments(p, ReadConfig)
    p.add_argument("--quantize", action="store_true",
                   help="CPU only: qint8 dynamic quantization of the LSTM/linear layers, as easyocr.Reader "
                        "does on CPU by default (same texts as the default Reader; not faster on every CPU)")
    p.add_argument("--json", action="store_true", help="print a JSON list of {image, text, confidence}")
    p.set_defaults(func=run)


def _looks_like_model(arg: str) -> bool:
    path = Path(arg)
    if is_origin_spec(arg):
        return not path.exists()
    if path.is_dir():
        from ..runfolder import is_run_folder

        return is_run_folder(path)
    return path.is_file() and path.suffix.lower() in (".pt", ".pth")


def _image_paths(inputs: list[str]) -> list[Path]:
    paths: list[Path] = []
    for arg in inputs:
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputError(f"folder {path} has no images ({', '.join(IMAGE_SUFFIXES)}): "
                                 "pass image files or a folder holding them")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise InputError(f"{path} does not exist: pass line images or folders of them")
    return paths


def run(args) -> int:
    from ..events import Progress
    from ..origins import source_spec
    from ..images import decode_image
    from ..inference import Predictor
    from ._progress import EventBars

    inputs = list(args.inputs)
    model = args.model
    if model is None and len(inputs) > 1 and _looks_like_model(inputs[0]):
        model = inputs.pop(0)
    spec = source_spec(model or DEFAULT_ORIGIN, args.version)
    paths = _image_paths(inputs)
    read = config_from_args(ReadConfig, args, ReadConfig())
    # qint8 dynamic quantization has CPU kernels only: "auto" then means the CPU.
    device = resolve_read_device(read.device, args.quantize)  # Predictor names a conflict
    with EventBars() as bars:  # on stderr: stdout stays the readings
        images = []
        for path in paths:
            images.append(decode_image(path.read_bytes(), where=str(path)))
            bars(Progress("load", len(images), len(paths)))
        predictor = Predictor.from_origin(spec, device=device, batch_size=read.batch_size,
                                          reader_compatible=read.reader_compatible, quantize=args.quantize)
        predictions = predictor.predict(images, callback=bars)
    if args.json:
        rows = [{"image": str(p), "text": r.text, "confidence": round(r.confidence, 6)}
                for p, r in zip(paths, predictions)]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for p, r in zip(paths, predictions):
            print(f"{p}\t{r.text}\t{r.confidence:.4f}")
    return 0
