"""Synthetic text-line datasets rendered with trdg, written straight into LMDB in parallel.

This is the only module that imports trdg. Labels are drawn in the parent from the seed; each
sample is rendered in a worker with its own seeded RNG state, so the same config and seed give
the same labels and the same image bytes whatever the number of workers. Each sample's font is
drawn from the fonts that really have glyphs for its characters (many trdg display fonts lack
æ/ø/å or draw lowercase as capitals); a line no font can draw is rejected with the reason.
Every space is drawn as a visible gap (``MIN_SPACE_EM``), also in condensed display fonts whose
own space is as narrow as a letter gap. ``RenderConfig.preset`` picks a look (ocrtrain.degrade:
plain, receipt-printer, scanned-page, phone-photo) and, with ``fonts="auto"``, its font pool
(ocrtrain.fonts); ``SynthConfig.rich_in`` makes every line carry one of some rare characters.

>>> cfg = SynthConfig(count=8, seed=1)
>>> # generate_dataset(cfg, "datasets/receipts")     # train/ val/ test/ manifest.json
>>> # preview(cfg, 4)                                # [(PIL.Image, label), ...], writes nothing
"""
from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing as mp
import random
import re
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, Optional, Sequence, Union

import numpy as np
from PIL import Image, ImageFont

from .config import Config, check
from .corpus import BUILTIN, CSV_SUFFIXES, TextSource, load_source, rich_entries
from .dataset import DatasetWriter, SplitConfig
from .degrade import PRESETS, degrade, degrade_rng
from .errors import InputError, OcrtrainError
from .events import Callback, Message, Progress, emit
from .fonts import POOLS, _glyph_check, font_missing_chars, font_paths, is_pool, trdg_font_dir  # noqa: F401
from .images import encode_png
from .optional import trdg_missing
from .sysinfo import available_cpus
from .line_templates import DEFAULT_TEMPLATES, DEFAULT_WEIGHTS, check_template, make_labels, template_fields

__all__ = ["RenderConfig", "SynthConfig", "SynthCanceled", "preview", "generate_dataset",
           "font_missing_chars", "trdg_font_dir", "source_entries", "make_synth_labels"]

log = logging.getLogger(__name__)


class SynthCanceled(OcrtrainError):
    """Generation was stopped through its stop event; no dataset folder was left behind."""


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
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # trdg prints on import
            from trdg.data_generator import FakeTextDataGenerator
    except ModuleNotFoundError as exc:
        raise trdg_missing(exc) from None  # InputError naming the install command
    import trdg

    return FakeTextDataGenerator, Path(trdg.__file__).parent / "fonts" / "latin"


@dataclass(frozen=True)
class RenderConfig(Config):
    """How each line is drawn: trdg options, a font pool, and a preset look (ocrtrain.degrade)."""

    preset: Literal["plain", "receipt-printer", "scanned-page", "phone-photo"] = field(default="plain", metadata={
        "help": "the look of the lines: plain (trdg's rendering), receipt-printer (monospace, faded thermal print, "
                "low contrast, slight perspective, JPEG), scanned-page, phone-photo"})
    fonts: str = field(default="auto", metadata={
        "help": "font pool: auto (the preset's: mono for receipt-printer, else trdg), trdg (its latin fonts), "
                "text (trdg's plain text faces), mono (packaged monospace faces), or a folder of .ttf/.otf fonts"})
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
        check(is_pool(self.fonts) or Path(self.fonts).is_dir(),
              f"fonts must be one of {', '.join(POOLS)} or an existing folder, got {self.fonts!r}")


@dataclass(frozen=True)
class SynthConfig(Config):
    """What to generate: count, seed, text source, templates, case variants, workers, split."""

    count: int = field(default=1000, metadata={"help": "number of lines to generate"})
    seed: int = field(default=0, metadata={"help": "seed for labels and rendering"})
    source: str = field(default=BUILTIN, metadata={"help": "'builtin' (Norwegian groceries), a word-list .txt, or a .csv/.tsv"})
    column: str = field(default="", metadata={"help": "the CSV/TSV column holding the text"})
    templates: tuple[str, ...] = field(default=DEFAULT_TEMPLATES,
                                       metadata={"help": "line templates; fields {item} {price} {number} {qty} {date} {time} {weight}"})
    template_weights: tuple[float, ...] = field(default=DEFAULT_WEIGHTS, metadata={"help": "relative weight of each template"})
    upper_prob: float = field(default=0.1, metadata={"help": "share of lines in UPPER CASE"})
    title_prob: float = field(default=0.0, metadata={"help": "share of lines in Title Case"})
    rich_in: str = field(default="", metadata={
        "help": "characters to make every line rich in (e.g. 'èîôü' the audit found rare): source entries holding "
                "them plus source words with them put in; only {item} templates, no case variants"})
    single_spaces: bool = field(default=True, metadata={
        "help": "collapse runs of spaces in the labels (CTC cannot count spaces; receipts' column gaps read as one)"})
    workers: int = field(default=0, metadata={"help": "render processes (0 = one per usable CPU: affinity mask and container quota)"})
    render: RenderConfig = field(default_factory=RenderConfig)
    split: SplitConfig = field(default_factory=SplitConfig)

    def validate(self) -> None:
        check(self.count >= 1, f"count must be >= 1, got {self.count}")
        check(self.workers >= 0, f"workers must be >= 0, got {self.workers}")
        check(len(self.templates) > 0, "give at least one template, e.g. '{item} {price}'")
        check(len(self.template_weights) in (0, len(self.templates)),
              f"template_weights has {len(self.template_weights)} values for {len(self.templates)} templates: give one per template")
        check(all(w >= 0 for w in self.template_weights) and (not self.template_weights or sum(self.template_weights) > 0),
              "template_weights must be >= 0 and not all zero")
        check(0 <= self.upper_prob + self.title_prob <= 1, "upper_prob + title_prob must be within 0..1")
        for t in self.templates:
            check_template(t)
        if self.source != BUILTIN:
            check(Path(self.source).is_file(), f"text source {self.source!r} is not a file: give 'builtin', a .txt word list or a .csv")
            if Path(self.source).suffix.lower() in CSV_SUFFIXES:
                check(bool(self.column), f"{self.source} is a CSV/TSV: set column to the one holding the text")


def source_entries(config: SynthConfig) -> list[str]:
    """The text entries named by `config.source`."""
    return list(load_source(config.source, config.column).entries)


def _labels(config: SynthConfig, entries) -> list[str]:
    weights = config.template_weights or tuple(1.0 for _ in config.templates)
    if not config.rich_in:
        return make_labels(config.count, config.templates, weights, entries, config.seed,
                           config.upper_prob, config.title_prob, config.single_spaces)
    # Every line must hold a rare character: only templates with an {item}, one rich item per
    # line in turn (so the characters share the lines evenly), and no case changes (È is not è).
    pairs = [(t, w) for t, w in zip(config.templates, weights) if "item" in template_fields(t)]
    if not pairs:
        raise InputError("rich_in needs a template with {item}, e.g. '{item} {price}'")
    items = rich_entries(entries, config.rich_in, config.count, config.seed)
    templates, kept = zip(*pairs)
    labels = []
    for k, item in enumerate(items):
        labels += make_labels(1, templates, kept, [item], config.seed * 1_000_003 + k,
                              single_spaces=config.single_spaces)
    return labels


def make_synth_labels(config: SynthConfig) -> list[str]:
    """The labels `config` renders, in sample order (drawn from `config.seed` alone)."""
    return _labels(config, source_entries(config))


def _font_paths(fonts: str, preset: str = "plain") -> list[Path]:
    return font_paths(fonts, preset)


# --- worker side -------------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(render: dict, seed: int) -> None:
    _WORKER["render"] = RenderConfig.from_dict(render)
    _WORKER["seed"] = seed
    _trdg()


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


#: Smallest ink gap drawn for one space, in ems. Condensed display fonts (Bebas, Amatic) have
#: spaces as narrow as their letter gaps, so "1 X IMSDAL" came out as "1XIMSDAL"; a fifth of an
#: em is about what text faces such as Roboto or Open Sans leave between words anyway.
MIN_SPACE_EM = 0.2


def _word_layout(label: str, font: ImageFont.FreeTypeFont, spacing: int) -> tuple[list[tuple[float, str]], int]:
    """Where each piece of `label` is drawn: ([(x, text), ...], width of the canvas).

    A piece is a whole word (one pass keeps the font's kerning) or, with extra character
    spacing, one character. Words are placed at the font's own advance, then pushed right until
    the ink gap at each run of n spaces is at least ``n * MIN_SPACE_EM`` ems (plus the extra
    character spacing, so a word gap stays wider than a letter gap).
    """
    parts = re.split(r"( +)", label)
    pieces: list[tuple[float, str]] = []
    x, prev_right, spaces = 0.0, None, 0
    for part in parts:
        if not part:
            continue
        if part.startswith(" "):
            spaces = len(part)
            # With extra spacing a space is a character too: spaced like one, and after it.
            x += font.getlength(part) + spacing * (spaces + 1)
            continue
        chars = [part] if spacing == 0 else list(part)
        widths = [font.getlength(c) for c in chars]
        left = font.getbbox(chars[0])[0]
        if prev_right is None:
            x -= min(0, left)  # an italic first glyph may start left of the pen
        else:
            deficit = spaces * MIN_SPACE_EM * font.size + spacing - ((x + left) - prev_right)
            x += max(0.0, deficit)
        for c, w in zip(chars, widths):
            pieces.append((x, c))
            x += w + spacing
        x -= spacing
        last_x, last = pieces[-1]
        prev_right = last_x + font.getbbox(last)[2]
        spaces = 0
    width = max(1, int(np.ceil(max(prev_right or 1.0, x))))
    return pieces, width


def _draw_text(label: str, font_path: str, render: RenderConfig, rng: random.Random) -> Image.Image:
    """The text as an RGBA image (alpha = glyph coverage), each word drawn in one pass.

    trdg's own generator draws every character twice (text and mask) to support character
    spacing; drawing whole words once gives the same glyphs. Spaces get a visible minimum width
    (see :data:`MIN_SPACE_EM`).
    """
    from PIL import ImageColor, ImageDraw

    font = _font(font_path, render.height)
    c1, c2 = (ImageColor.getrgb(c) for c in (render.text_color.split(",") * 2)[:2])
    fill = tuple(rng.randint(min(a, b), max(a, b)) for a, b in zip(c1, c2))
    pieces, width = _word_layout(label, font, render.character_spacing)
    height = max(1, font.getbbox(label)[3])
    text = Image.new("RGBA", (width, height), (*fill, 0))
    draw = ImageDraw.Draw(text)
    for x, piece in pieces:
        draw.text((round(x), 0), piece, fill=(*fill, 255), font=font)
    box = text.getchannel("A").getbbox()
    return text.crop(box) if box else text


def _render(index: int, label: str, render: RenderConfig, font: str, seed: int) -> Image.Image:
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
    background = rng.choice(render.backgrounds)
    text = _draw_text(label, font, render, rng)
    angle = rng.uniform(-render.skew, render.skew) if render.random_skew else render.skew
    if angle:
        # Bilinear: half the cost of bicubic here, and the downscale to the line height that
        # follows makes the two indistinguishable at receipt skews of a few degrees.
        text = text.rotate(angle, expand=True, resample=Image.Resampling.BILINEAR)
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
    image = image.filter(ImageFilter.GaussianBlur(radius)) if radius else image
    if render.preset != "plain":  # its own generator: plain lines stay the pixels they always were
        image = degrade(image, PRESETS[render.preset], degrade_rng(seed, index))
    return image


def _render_task(item: tuple[int, str, Optional[str], str]) -> tuple[int, Optional[bytes], str]:
    index, label, font, reason = item
    if font is None:
        return index, None, reason
    try:
        image = _render(index, label, _WORKER["render"], font, _WORKER["seed"])
        return index, encode_png(image), ""
    except Exception as exc:  # one bad sample must not end the run: it becomes a rejected row
        return index, None, (f"render failed ({type(exc).__name__}: {exc}): it was skipped; "
                             "try another font or background")


@dataclass
class _Plan:
    """Everything decided in the parent before rendering: labels, one font per sample, notes."""

    labels: list[str]
    fonts: list[Optional[str]]  # None: no font draws this label (reasons[i] says why)
    reasons: dict[int, str]
    source: TextSource
    fonts_used: list[str]
    fonts_skipped: dict[str, str]

    def tasks(self):
        return ((i, label, self.fonts[i], self.reasons.get(i, ""))
                for i, label in enumerate(self.labels))


def _assign_fonts(labels: list[str], render: RenderConfig, seed: int):
    """Pick a font per label among those that draw all its characters (seeded).

    A user font folder must cover every character (the font that does not is named); trdg's own
    folder is filtered per label, so one odd character (say '™' in a CSV) costs only the lines
    that use it, which are rejected with the reason, instead of the whole run.
    """
    paths = _font_paths(render.fonts, render.preset)
    chars = "".join(sorted({c for label in labels for c in label if not c.isspace()}))
    missing = {p: font_missing_chars(p, chars) for p in paths}
    if not is_pool(render.fonts):
        for p, gone in missing.items():
            if gone:
                example = next(label for label in labels if gone & set(label))
                raise InputError(
                    f"font {p.name} in {render.fonts} cannot draw {''.join(sorted(gone))!r} used in the "
                    f"labels (e.g. {example!r}): remove the font from the folder or pick fonts that have these "
                    "characters")
    rare = set().union(*missing.values())
    rng = random.Random(f"fonts/{seed}")
    candidates: dict[frozenset, list[Path]] = {}
    fonts: list[Optional[str]] = []
    reasons: dict[int, str] = {}
    for i, label in enumerate(labels):
        key = frozenset(set(label) & rare)
        if key not in candidates:
            candidates[key] = [p for p in paths if not (missing[p] & key)]
        pool = candidates[key]
        if pool:
            fonts.append(str(pool[rng.randrange(len(pool))]))
        else:
            fonts.append(None)
            nobody = sorted(c for c in key if all(c in missing[p] for p in paths))
            reasons[i] = (f"no font in {render.fonts} draws {''.join(nobody or sorted(key))!r}: remove those "
                          "characters from the text source or set render.fonts to a folder of fonts that have them")
    used = sorted({Path(f).name for f in fonts if f})
    skipped = {p.name: "".join(sorted(m)) for p, m in missing.items() if m and p.name not in used}
    return fonts, reasons, used, skipped


def _prepare_plan(config: SynthConfig, labels: Optional[Sequence[str]] = None) -> _Plan:
    if labels is None:
        source = load_source(config.source, config.column)
        labels = _labels(config, source.entries)
    else:
        source = TextSource(tuple(labels), "given labels")
        labels = list(labels)
    fonts, reasons, used, skipped = _assign_fonts(labels, config.render, config.seed)
    if not used:
        raise InputError(f"no font in {config.render.fonts} draws the labels (first: {labels[0]!r}; "
                         f"{reasons.get(0, '')})")
    return _Plan(labels, fonts, reasons, source, used, skipped)


def _prepare(config: SynthConfig) -> tuple[list[str], list[Optional[str]]]:
    """Labels and the font of each sample (None where no font can draw it)."""
    plan = _prepare_plan(config)
    return plan.labels, plan.fonts


def preview(config: SynthConfig, n: int = 16) -> list[tuple[Image.Image, str]]:
    """Render the first `n` samples of `config` in-process; nothing is written."""
    small = config.replace(count=max(1, min(n, config.count)))
    plan = _prepare_plan(small)
    return [(_render(i, label, small.render, font, small.seed), label)
            for i, label, font, _ in plan.tasks() if font is not None]


def generate_dataset(config: SynthConfig, out: Union[str, Path], callback: Optional[Callback] = None,
                     stop_event: Optional[threading.Event] = None, overwrite: bool = False,
                     labels: Optional[Sequence[str]] = None, splits: Optional[Sequence[str]] = None,
                     source_info: Optional[dict] = None) -> Path:
    """Render `config.count` lines in parallel into a dataset folder at `out` (atomically).

    `labels` replaces the labels drawn from the config's source and templates (one sample each,
    `config.count` is then ignored); `splits` names each sample's split instead of the seeded
    random split; `source_info` is merged into the manifest's ``source``. A sample that fails
    to render is recorded in rejected.csv; cancelling (`stop_event`) or an error leaves no
    dataset folder behind.
    """
    started = time.time()
    plan = _prepare_plan(config, labels)
    labels = plan.labels
    if splits is not None and len(splits) != len(labels):
        raise InputError(f"got {len(splits)} splits for {len(labels)} labels: give one split per label")
    source = {"kind": "synth", "source": config.source, **plan.source.summary(), **(source_info or {})}
    _report_plan(plan, callback)
    writer = DatasetWriter(out, config.split, source=source, overwrite=overwrite)
    emit(callback, Progress("generate", 0, len(labels)))
    try:
        _render_into(writer, config, plan, splits, out, callback, stop_event, started)
    except BaseException:
        writer.abort()
        raise
    path = writer.close(extra={"config": config.to_dict(), "fonts": plan.fonts_used,
                               "fonts_left_out": plan.fonts_skipped})
    emit(callback, Message(f"wrote {writer.total} samples to {path} ({len(writer.rejected)} rejected) "
                           f"in {time.time() - started:.1f} s"))
    return path


def _report_plan(plan, callback: Optional[Callback]) -> None:
    if plan.source.skipped:
        emit(callback, Message(f"{plan.source.origin}: skipped {len(plan.source.skipped)} malformed row(s), "
                               f"e.g. {plan.source.skipped[0]}", "warning"))
    if plan.fonts_skipped:
        emit(callback, Message(f"using {len(plan.fonts_used)} fonts; left out {len(plan.fonts_skipped)} that cannot "
                               f"draw these labels: {', '.join(sorted(plan.fonts_skipped))}"))


def _render_into(writer, config: SynthConfig, plan, splits, out, callback, stop_event, started: float) -> None:
    """Render every planned sample in a worker pool into `writer`, in sample order."""
    labels = plan.labels
    workers = config.workers or available_cpus()  # a container's CPU quota, not the machine's cores
    _trdg()  # a missing trdg fails here, named, not in every worker's start-up
    # forkserver: forking a process with live threads (the dashboard kernel, a torch process) can
    # deadlock in the child; the server forks from a clean single-threaded process instead.
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    chunk = max(1, min(64, len(labels) // (workers * 8) or 1))
    done = 0

    def canceled() -> bool:
        return stop_event is not None and stop_event.is_set()

    if canceled():
        raise SynthCanceled(f"generation of {out} canceled before it started: nothing was written")
    with ctx.Pool(workers, initializer=_init_worker,
                  initargs=(config.render.to_dict(), config.seed)) as pool:
        last = 0.0
        # imap keeps sample order, so the seeded split does not depend on worker timing.
        for index, data, error in pool.imap(_render_task, plan.tasks(), chunksize=chunk):
            if canceled():
                pool.terminate()
                raise SynthCanceled(f"generation of {out} canceled after {done} samples: nothing was kept")
            if data is None:
                writer.reject(f"synth-{index}", labels[index], error)
            else:
                writer.add(data, labels[index], sample=f"synth-{index}",
                           split=splits[index] if splits is not None else None)
            done += 1
            now = time.time()
            if now - last > 0.25 or done == len(labels):
                last = now
                emit(callback, Progress("generate", done, len(labels),
                                        {"per_s": done / max(now - started, 1e-9),
                                         "rejected": len(writer.rejected)}))
