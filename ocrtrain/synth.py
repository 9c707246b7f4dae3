"""Synthetic text-line datasets rendered with trdg, written straight into LMDB in parallel.

This is the only module that imports trdg. Labels are drawn in the parent from the seed; each
sample is rendered in a worker with its own seeded RNG state, so the same config and seed give
the same labels and the same image bytes whatever the number of workers.

>>> cfg = SynthConfig(count=8, seed=1)
>>> # generate_dataset(cfg, "datasets/receipts")     # train/ val/ test/ manifest.json
>>> # preview(cfg, 4)                                # [(PIL.Image, label), ...], writes nothing
"""
from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing as mp
import os
import random
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image, ImageFont

from .config import Config, check
from .corpus import BUILTIN, load_builtin, load_csv_column, load_wordlist
from .dataset import DatasetWriter, SplitConfig
from .errors import ConfigError, InputError, OcrtrainError
from .events import Callback, Message, Progress, emit
from .images import encode_png
from .templates import check_template, make_labels

__all__ = ["RenderConfig", "SynthConfig", "preview", "generate_dataset", "default_fonts",
           "font_missing_chars", "trdg_font_dir", "source_entries", "make_synth_labels"]

log = logging.getLogger(__name__)

BACKGROUNDS = {"noise": 0, "plain": 1, "quasicrystal": 2, "image": 3}


def _patch_pillow() -> None:
    # trdg 1.8.0 calls FreeTypeFont.getsize, removed in Pillow 10.
    if not hasattr(ImageFont.FreeTypeFont, "getsize"):
        def getsize(self, text, *args, **kwargs):
            left, top, right, bottom = self.getbbox(text, *args, **kwargs)
            return right, bottom

        ImageFont.FreeTypeFont.getsize = getsize


@lru_cache(maxsize=1)
def _trdg():
    _patch_pillow()
    with contextlib.redirect_stdout(io.StringIO()):  # trdg prints on import
        from trdg.data_generator import FakeTextDataGenerator
    import trdg

    return FakeTextDataGenerator, Path(trdg.__file__).parent / "fonts" / "latin"


@dataclass(frozen=True)
class RenderConfig(Config):
    """How each line is drawn (trdg options)."""

    fonts: str = field(default="trdg", metadata={"help": "'trdg' (its latin fonts) or a folder of .ttf/.otf fonts"})
    height: int = field(default=48, metadata={"help": "image height in pixels"})
    skew: int = field(default=2, metadata={"help": "skew angle in degrees"})
    random_skew: bool = field(default=True, metadata={"help": "draw the skew uniformly in [-skew, skew]"})
    blur: float = field(default=1.0, metadata={"help": "gaussian blur radius"})
    random_blur: bool = field(default=True, metadata={"help": "draw the blur radius in [0, blur]"})
    distortion: str = field(default="none", metadata={"help": "text distortion", "choices": ("none", "sine", "cosine", "random")})
    backgrounds: tuple[str, ...] = field(default=("noise", "plain"), metadata={"help": "backgrounds drawn per sample: noise, plain, quasicrystal, image"})
    background_dir: str = field(default="", metadata={"help": "folder of background images (for the 'image' background)"})
    text_color: str = field(default="#000000,#404040", metadata={"help": "text colour '#rrggbb' or a range '#rrggbb,#rrggbb'"})
    character_spacing: int = field(default=0, metadata={"help": "extra pixels between characters"})
    margin: int = field(default=4, metadata={"help": "margin around the text in pixels"})

    def validate(self) -> None:
        check(16 <= self.height <= 256, f"height must be 16..256 pixels, got {self.height}")
        check(0 <= self.skew <= 30, f"skew must be 0..30 degrees, got {self.skew}")
        check(self.blur >= 0, f"blur must be >= 0, got {self.blur}")
        check(0 <= self.margin < self.height // 3, f"margin must be 0..{self.height // 3 - 1} for height {self.height}")
        check(len(self.backgrounds) > 0, "backgrounds must name at least one of noise, plain, quasicrystal, image")
        for b in self.backgrounds:
            check(b in BACKGROUNDS, f"background {b!r} is not one of {', '.join(BACKGROUNDS)}")
        check("image" not in self.backgrounds or Path(self.background_dir).is_dir(),
              "the 'image' background needs background_dir set to a folder of images")
        check(self.fonts == "trdg" or Path(self.fonts).is_dir(),
              f"fonts must be 'trdg' or an existing folder, got {self.fonts!r}")


@dataclass(frozen=True)
class SynthConfig(Config):
    """What to generate: count, seed, text source, templates, case variants, workers, split."""

    count: int = field(default=1000, metadata={"help": "number of lines to generate"})
    seed: int = field(default=0, metadata={"help": "seed for labels and rendering"})
    source: str = field(default=BUILTIN, metadata={"help": "'builtin' (Norwegian groceries), a word-list .txt, or a .csv/.tsv"})
    column: str = field(default="", metadata={"help": "the CSV/TSV column holding the text"})
    templates: tuple[str, ...] = field(default=("{item}    {price}", "{item}", "{qty} {item}    {price}", "{price}", "{date}"),
                                       metadata={"help": "line templates; fields {item} {price} {number} {qty} {date} {weight}"})
    template_weights: tuple[float, ...] = field(default=(6.0, 2.0, 1.0, 0.5, 0.5), metadata={"help": "relative weight of each template"})
    upper_prob: float = field(default=0.1, metadata={"help": "share of lines in UPPER CASE"})
    title_prob: float = field(default=0.0, metadata={"help": "share of lines in Title Case"})
    workers: int = field(default=0, metadata={"help": "render processes (0 = one per CPU core)"})
    render: RenderConfig = field(default_factory=RenderConfig)
    split: SplitConfig = field(default_factory=SplitConfig)

    def validate(self) -> None:
        check(self.count >= 1, f"count must be >= 1, got {self.count}")
        check(self.workers >= 0, f"workers must be >= 0, got {self.workers}")
        check(len(self.templates) > 0, "give at least one template, e.g. '{item}    {price}'")
        check(len(self.template_weights) in (0, len(self.templates)),
              f"template_weights has {len(self.template_weights)} values for {len(self.templates)} templates: give one per template")
        check(all(w >= 0 for w in self.template_weights) and (not self.template_weights or sum(self.template_weights) > 0),
              "template_weights must be >= 0 and not all zero")
        check(0 <= self.upper_prob + self.title_prob <= 1, "upper_prob + title_prob must be within 0..1")
        for t in self.templates:
            check_template(t)
        if self.source != BUILTIN:
            check(Path(self.source).is_file(), f"text source {self.source!r} is not a file: give 'builtin', a .txt word list or a .csv")
            if Path(self.source).suffix.lower() in (".csv", ".tsv"):
                check(bool(self.column), f"{self.source} is a CSV/TSV: set column to the one holding the text")


def source_entries(config: SynthConfig) -> list[str]:
    """The text entries named by `config.source`."""
    if config.source == BUILTIN:
        return load_builtin()
    if Path(config.source).suffix.lower() in (".csv", ".tsv"):
        return list(load_csv_column(config.source, config.column).entries)
    return list(load_wordlist(config.source).entries)


def make_synth_labels(config: SynthConfig) -> list[str]:
    weights = config.template_weights or tuple(1.0 for _ in config.templates)
    return make_labels(config.count, config.templates, weights, source_entries(config), config.seed,
                       config.upper_prob, config.title_prob)


def trdg_font_dir() -> Path:
    """trdg's bundled latin fonts."""
    return _trdg()[1]


def _font_paths(fonts: str) -> list[Path]:
    folder = _trdg()[1] if fonts == "trdg" else Path(fonts)
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".ttf", ".otf"))
    if not paths:
        raise InputError(f"font folder {folder} holds no .ttf/.otf fonts: add some or use fonts='trdg'")
    return paths


@lru_cache(maxsize=512)
def _glyph_ok(font_path: str, chars: str) -> tuple[str, ...]:
    """Characters of `chars` the font has no real glyph for (drawn as .notdef or case-folded)."""
    font = ImageFont.truetype(font_path, 32)

    def mask(c):
        m = font.getmask(c)
        return m.size, bytes(m)

    notdef = {mask(c) for c in ("\uffff", "\U0010fffd", "\ue000")}
    missing = [c for c in chars if not c.isspace() and mask(c) in notdef]
    # All-caps display fonts draw 'a' as 'A': the label would not match the pixels.
    missing += [c for c in chars if c.islower() and c.upper() != c and mask(c) == mask(c.upper())]
    return tuple(sorted(set(missing)))


def font_missing_chars(font_path: Union[str, Path], chars: str) -> set[str]:
    """Characters of `chars` that `font_path` cannot draw faithfully."""
    return set(_glyph_ok(str(font_path), "".join(sorted(set(chars)))))


def default_fonts(config: RenderConfig, chars: str) -> list[Path]:
    """Fonts of `config.fonts` that draw every character in `chars`.

    trdg's own folder is filtered silently (many of its display fonts lack æ/ø/å); a user folder
    must cover the text, and a font that does not is named in the error.
    """
    paths = _font_paths(config.fonts)
    good, bad = [], {}
    for p in paths:
        missing = font_missing_chars(p, chars)
        (bad.__setitem__(p.name, missing) if missing else good.append(p))
    if config.fonts != "trdg" and bad:
        name, missing = next(iter(bad.items()))
        raise InputError(f"font {name} in {config.fonts} cannot draw {sorted(missing)} used in the labels: "
                         "remove it from the folder or pick fonts that cover these characters")
    if not good:
        raise InputError(f"no font in {config.fonts} draws all of {sorted(set(chars))}: add a font that does")
    return good


# --- worker side -------------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(render: dict, fonts: list[str], seed: int) -> None:
    _WORKER["render"] = RenderConfig.from_dict(render)
    _WORKER["fonts"] = fonts
    _WORKER["seed"] = seed
    _trdg()


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _draw_text(label: str, font_path: str, render: RenderConfig, rng: random.Random) -> Image.Image:
    """The text as an RGBA image (alpha = glyph coverage), drawn in one pass.

    trdg's own generator draws every character twice (text and mask) to support character
    spacing; with no extra spacing one pass over the whole string gives the same glyphs.
    """
    from PIL import ImageColor, ImageDraw

    font = _font(font_path, render.height)
    c1, c2 = (ImageColor.getrgb(c) for c in (render.text_color.split(",") * 2)[:2])
    fill = tuple(rng.randint(min(a, b), max(a, b)) for a, b in zip(c1, c2))
    if render.character_spacing == 0:
        left, top, right, bottom = font.getbbox(label)
        width, height = max(1, right), max(1, bottom)
        text = Image.new("RGBA", (width, height), (*fill, 0))
        ImageDraw.Draw(text).text((0, 0), label, fill=(*fill, 255), font=font)
    else:
        widths = [font.getlength(c) for c in label]
        width = int(sum(widths) + render.character_spacing * (len(label) - 1)) + 1
        height = max(1, font.getbbox(label)[3])
        text = Image.new("RGBA", (width, height), (*fill, 0))
        draw, x = ImageDraw.Draw(text), 0.0
        for c, w in zip(label, widths):
            draw.text((x, 0), c, fill=(*fill, 255), font=font)
            x += w + render.character_spacing
    box = text.getchannel("A").getbbox()
    return text.crop(box) if box else text


def _render(index: int, label: str, render: RenderConfig, fonts: list[str], seed: int) -> Image.Image:
    """One line: trdg's skew, distortion, background and blur around a one-pass text drawing."""
    _trdg()
    from PIL import ImageFilter
    from trdg import background_generator, distorsion_generator

    # One RNG state per sample (trdg draws from `random`, numpy and OpenCV) -> reproducible pixels.
    state = (seed * 1_000_003 + index) % (2**32)
    random.seed(state)
    np.random.seed(state)
    import cv2

    cv2.setRNGSeed(state % (2**31))  # trdg's noise background draws from OpenCV's RNG
    rng = random.Random(state)
    font = fonts[rng.randrange(len(fonts))]
    background = rng.choice(render.backgrounds)
    text = _draw_text(label, font, render, rng)
    angle = rng.uniform(-render.skew, render.skew) if render.random_skew else render.skew
    if angle:
        text = text.rotate(angle, expand=True, resample=Image.BICUBIC)
    if render.distortion != "none":
        func = getattr(distorsion_generator, {"sine": "sin", "cosine": "cos"}.get(render.distortion, "random"))
        text, _ = func(text, text.copy(), vertical=True, horizontal=False)
    m = render.margin
    inner = render.height - 2 * m
    text = text.resize((max(1, round(text.width * inner / text.height)), inner), Image.LANCZOS)
    width, height = text.width + 2 * m, render.height
    if background == "noise":
        canvas = background_generator.gaussian_noise(height, width)
    elif background == "plain":
        canvas = background_generator.plain_white(height, width)
    elif background == "quasicrystal":
        canvas = background_generator.quasicrystal(height, width)
    else:
        canvas = background_generator.image(height, width, render.background_dir)
    canvas = canvas.convert("RGBA")
    canvas.alpha_composite(text, (m, m))
    radius = rng.random() * render.blur if render.random_blur else render.blur
    image = canvas.convert("L")
    return image.filter(ImageFilter.GaussianBlur(radius)) if radius else image


def _render_task(item: tuple[int, str]) -> tuple[int, Optional[bytes], str]:
    index, label = item
    try:
        image = _render(index, label, _WORKER["render"], _WORKER["fonts"], _WORKER["seed"])
        return index, encode_png(image), ""
    except Exception as exc:  # one bad sample must not end the run: it becomes a rejected row
        return index, None, f"{type(exc).__name__}: {exc}"


def _prepare(config: SynthConfig) -> tuple[list[str], list[str]]:
    labels = make_synth_labels(config)
    fonts = [str(p) for p in default_fonts(config.render, "".join(set("".join(labels))))]
    return labels, fonts


def preview(config: SynthConfig, n: int = 16) -> list[tuple[Image.Image, str]]:
    """Render the first `n` samples of `config` in-process; nothing is written."""
    small = config.replace(count=max(1, min(n, config.count)))
    labels, fonts = _prepare(small)
    return [(_render(i, label, small.render, fonts, small.seed), label) for i, label in enumerate(labels)]


def generate_dataset(config: SynthConfig, out: Union[str, Path], callback: Optional[Callback] = None,
                     stop_event: Optional[threading.Event] = None, overwrite: bool = False) -> Path:
    """Render `config.count` lines in parallel into a dataset folder at `out` (atomically).

    A sample that fails to render is recorded in rejected.csv; cancelling (`stop_event`) or an
    error leaves no dataset folder behind.
    """
    started = time.time()
    labels, fonts = _prepare(config)
    workers = config.workers or os.cpu_count() or 1
    writer = DatasetWriter(out, config.split, source={"kind": "synth", "source": config.source},
                           overwrite=overwrite)
    emit(callback, Progress("generate", 0, len(labels)))
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    chunk = max(1, min(64, len(labels) // (workers * 8) or 1))
    try:
        with ctx.Pool(workers, initializer=_init_worker,
                      initargs=(config.render.to_dict(), fonts, config.seed)) as pool:
            done = 0
            last = 0.0
            for index, data, error in pool.imap(_render_task, enumerate(labels), chunksize=chunk):
                if stop_event is not None and stop_event.is_set():
                    pool.terminate()
                    raise OcrtrainError(f"generation of {out} canceled after {done} samples: nothing was kept")
                if data is None:
                    writer.reject(f"synth-{index}", labels[index], f"render failed ({error}): "
                                  "it was skipped; try another font or background")
                else:
                    writer.add(data, labels[index], sample=f"synth-{index}")
                done += 1
                now = time.time()
                if now - last > 0.25 or done == len(labels):
                    last = now
                    emit(callback, Progress("generate", done, len(labels),
                                            {"per_s": done / max(now - started, 1e-9)}))
    except BaseException:
        writer.abort()
        raise
    path = writer.close(extra={"config": config.to_dict(), "fonts": [Path(f).name for f in fonts]})
    emit(callback, Message(f"wrote {writer.total} samples to {path} ({len(writer.rejected)} rejected) "
                           f"in {time.time() - started:.1f} s"))
    return path
