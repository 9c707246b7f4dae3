"""Fine-tuning EasyOCR's CRAFT detector on your pages: their verified lines are the targets.

CRAFT misses faint or small print and splits or merges lines on documents unlike its training
data. Given a document set whose pages (tagged ``train`` by default) hold verified lines, this
fine-tunes ``craft_mlt_25k.pth``: each page's lines become character and link heat maps
(:mod:`.craft_targets`), random crops around its lines are fed at the page's own scale (as
``Reader`` sees it: shrunk only past ``canvas_size``), and the loss is CRAFT's (squared error on
text pixels plus the hardest background). By default the VGG backbone stays fixed and only the
U-net head trains (about 3x faster per step on a CPU; ``train_backbone`` trains all).

The result is a folder that ``easyocr.Reader`` loads as its detector::

    DETECTOR/craft_mlt_25k.pth   the weights (CRAFT's state dict)
    DETECTOR/detector.json       what it was trained on, how, and its loss curve

``ocrtrain pages eval MODEL --pages DOCSET --tag test --detector DETECTOR`` measures it on pages;
in your own code, after building the Reader as usual (its constructor only accepts the published
weights when downloads are off)::

    reader.detector = reader.initDetector("DETECTOR/craft_mlt_25k.pth")

>>> # train_detector(DocumentSet("docsets/receipts"), "detectors/receipts", DetectorTrainConfig(steps=150))
"""
from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..config import Config, check
from ..diskspace import disk_full_message, is_disk_full
from ..errors import DatasetError, ModelError
from ..events import Callback, Message, Progress, emit
from ..fsutil import now_iso, write_json_atomic
from ..replace import check_replaceable, partial_path, swap_into_place
from .craft_targets import line_maps, ohem_loss
from .docset import TAGS, DocumentSet
from .page_eval import truth_lines

__all__ = ["DetectorTrainConfig", "train_detector", "is_detector", "load_craft", "CRAFT_FILE", "DETECTOR_FORMAT"]

CRAFT_FILE = "craft_mlt_25k.pth"
DETECTOR_FORMAT = "ocrtrain-detector/1"
_MEAN, _STD = np.array([0.485, 0.456, 0.406]) * 255, np.array([0.229, 0.224, 0.225]) * 255


@dataclass(frozen=True)
class DetectorTrainConfig(Config):
    """How CRAFT is fine-tuned on a document set's pages."""

    tag: Optional[str] = field(default="train", metadata={
        "help": "train on the pages with this tag (train, val, test; empty = all pages)"})
    steps: int = field(default=150, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=2, metadata={"help": "crops per step"})
    crop: int = field(default=512, metadata={"help": "side of the square crops in pixels (a multiple of 32)"})
    lr: float = field(default=1e-4, metadata={"help": "Adam learning rate"})
    train_backbone: bool = field(default=False, metadata={
        "help": "also train CRAFT's VGG backbone (about 3x slower per step on a CPU)"})
    canvas_size: int = field(default=2560, metadata={"help": "pages larger than this (longest side) are shrunk, "
                                                               "as Reader does"})
    seed: int = field(default=0, metadata={"help": "crop sampling seed"})

    def validate(self) -> None:
        check(self.tag is None or self.tag in TAGS, f"tag must be one of {TAGS} or empty, got {self.tag!r}")
        check(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.crop >= 64 and self.crop % 32 == 0, f"crop must be a multiple of 32, >= 64, got {self.crop}")
        check(0 < self.lr < 1, f"lr must be in (0, 1), got {self.lr}")
        check(64 <= self.canvas_size <= 8192, f"canvas_size must be in [64, 8192], got {self.canvas_size}")


def is_detector(path: Union[str, Path]) -> bool:
    """Whether `path` is a detector folder this module wrote."""
    try:
        return json.loads((Path(path) / "detector.json").read_text()).get("format") == DETECTOR_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def load_craft(weights: Optional[Union[str, Path]] = None):
    """CRAFT with `weights` (a detector folder or a .pth file; default: EasyOCR's craft_mlt_25k)."""
    from ..easyocr_interop import craft_file, craft_net, english_g2_path

    return craft_net(craft_file(weights) if weights else english_g2_path().parent / CRAFT_FILE)


def _pages(docs: DocumentSet, config: DetectorTrainConfig) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, list]]:
    """(RGB page, region map, affinity map, line centres) per page with verified text lines."""
    from PIL import Image

    out = []
    for page in docs.pages:
        if config.tag is not None and page.tag != config.tag:
            continue
        lines = truth_lines(docs, page.id)
        if not lines:
            continue
        image = docs.image(page.id)
        scale = min(1.0, config.canvas_size / max(image.size))
        if scale < 1:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
        rgb = np.asarray(image, dtype=np.uint8)
        polygons = [np.asarray(l.polygon, dtype=np.float32) * scale for l in lines]
        region, affinity = line_maps(polygons, [l.text for l in lines], (rgb.shape[0] // 2, rgb.shape[1] // 2))
        out.append((rgb, region, affinity, [p.mean(0) for p in polygons]))
    if not out:
        where = f" tagged {config.tag!r}" if config.tag else ""
        raise DatasetError(f"{docs.path} has no pages{where} with verified text lines to train the detector on: "
                           "import them with their ground truth and a tag (`ocrtrain pages import SOURCE --out "
                           "DOCSET --tag train`) or verify lines in the Transcribe tab; --tag '' uses every page")
    return out


def _crop(page: tuple, size: int, rng: random.Random) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A size x size crop around a random line of `page` (white beyond the page) and its maps."""
    rgb, region, affinity, centres = page
    cx, cy = centres[rng.randrange(len(centres))]
    x0 = int(cx) - rng.randrange(size // 8, size - size // 8)
    y0 = int(cy) - rng.randrange(size // 8, size - size // 8)
    x0, y0 = x0 - x0 % 2, y0 - y0 % 2  # even, so the half-size maps line up
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    maps = np.zeros((2, size // 2, size // 2), dtype=np.float32)
    h, w = rgb.shape[:2]
    ax, ay, bx, by = max(0, x0), max(0, y0), min(w, x0 + size), min(h, y0 + size)
    if ax < bx and ay < by:
        image[ay - y0:by - y0, ax - x0:bx - x0] = rgb[ay:by, ax:bx]
        hx, hy, hbx, hby = ax // 2, ay // 2, min(region.shape[1], bx // 2), min(region.shape[0], by // 2)
        ox, oy = hx - x0 // 2, hy - y0 // 2
        maps[0, oy:oy + hby - hy, ox:ox + hbx - hx] = region[hy:hby, hx:hbx]
        maps[1, oy:oy + hby - hy, ox:ox + hbx - hx] = affinity[hy:hby, hx:hbx]
    return ((image - _MEAN) / _STD).astype(np.float32), maps[0], maps[1]


def _prepare_net(config: DetectorTrainConfig):
    """CRAFT from EasyOCR's weights in training mode with frozen BatchNorm statistics (tiny batches),
    its backbone fixed unless asked; (net, optimizer)."""
    import torch

    net = load_craft()
    net.train()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    if not config.train_backbone:
        for p in net.basenet.parameters():
            p.requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    return net, torch.optim.Adam(params, lr=config.lr)


def _train(net, optimizer, pages: list, config: DetectorTrainConfig, callback: Optional[Callback]) -> list[float]:
    import torch

    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    losses = []
    for step in range(1, config.steps + 1):
        crops = [_crop(pages[rng.randrange(len(pages))], config.crop, rng) for _ in range(config.batch_size)]
        images = torch.from_numpy(np.stack([c[0] for c in crops])).permute(0, 3, 1, 2)
        region = torch.from_numpy(np.stack([c[1] for c in crops]))
        affinity = torch.from_numpy(np.stack([c[2] for c in crops]))
        out, _ = net(images)
        loss = ohem_loss(out[..., 0], region) + ohem_loss(out[..., 1], affinity)
        if not torch.isfinite(loss):
            raise ModelError(f"the detector's loss became {loss.item()} at step {step}: lower --lr (now {config.lr})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(round(loss.item(), 5))
        emit(callback, Progress("train-detect", step, config.steps, {"loss": losses[-1]}))
    return losses


def train_detector(docs: DocumentSet, out: Union[str, Path], config: DetectorTrainConfig = DetectorTrainConfig(),
                   overwrite: bool = False, callback: Optional[Callback] = None) -> dict:
    """Fine-tune CRAFT on the set's verified lines and write the detector folder `out` (see module
    doc); returns what ``detector.json`` records. Nothing is written unless training finishes."""
    import torch

    out = Path(out)
    check_replaceable(out, overwrite, is_detector, protect=[docs.path], what="an ocrtrain detector folder")
    pages = _pages(docs, config)
    lines = sum(len(p[3]) for p in pages)
    emit(callback, Message(f"fine-tuning CRAFT on {len(pages)} pages ({lines} lines) of {docs.path}, "
                           f"{config.steps} steps of {config.batch_size} crops {config.crop} px"
                           + ("" if config.train_backbone else " (backbone fixed)")))
    started = time.time()
    net, optimizer = _prepare_net(config)
    losses = _train(net, optimizer, pages, config, callback)
    record = {"format": DETECTOR_FORMAT, "origin": CRAFT_FILE, "docset": str(docs.path), "pages": len(pages),
              "lines": lines, "config": dataclasses.asdict(config), "losses": losses,
              "seconds": round(time.time() - started, 1), "created": now_iso()}
    tmp = partial_path(out)
    tmp.mkdir(parents=True, exist_ok=False)
    try:
        torch.save(net.state_dict(), tmp / CRAFT_FILE)
        write_json_atomic(tmp / "detector.json", record)
        swap_into_place(tmp, out)
    except BaseException as exc:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(exc):
            raise DatasetError(disk_full_message(out, exc)) from None
        raise
    emit(callback, Message(f"wrote {out}: loss {losses[0]:.4f} -> {losses[-1]:.4f} in {record['seconds']:.0f} s; "
                           f"measure it: ocrtrain pages eval english_g2 --pages {docs.path} --detector {out}"))
    return record
