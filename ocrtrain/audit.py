"""Auditing a dataset before training: counts, characters the base model lacks, sizes, misfits.

>>> # report = audit_dataset("data/receipts"); print(report.summary())
>>> # report.outside_charset  ->  {'ø': 31, 'å': 12, 'æ': 7}
"""
from __future__ import annotations

import io
import math
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from PIL import Image

from .charset import Charset, english_g2_charset
from .dataset import SPLITS, Dataset
from .errors import ConfigError, DatasetError
from .families import DEFAULT_FAMILY, ModelFamily, get_family
from .originspec import ENGLISH_G2

__all__ = ["MAX_IMAGES", "MODEL_HEIGHT", "AuditReport", "audit_dataset", "resolve_charset", "ctc_length_needed", "ctc_steps"]

#: Image headers read per split when no bound is given (``ocrtrain audit --max-images``).
MAX_IMAGES = 20000
#: The model input height the CTC length rule assumes when none is given (``ocrtrain audit --height``).
MODEL_HEIGHT = 64
_EXAMPLES_PER_CHAR = 3
_TOO_LONG_LISTED = 200


def resolve_charset(base: Union[str, Charset]) -> tuple[str, Charset]:
    """(name, Charset) for ``"english_g2"``, a Charset, or a string of characters."""
    if isinstance(base, Charset):
        return "custom", base
    if base == ENGLISH_G2:
        return ENGLISH_G2, english_g2_charset()
    if isinstance(base, str) and base:
        return "custom", Charset(dict.fromkeys(base))
    raise ConfigError(f"base charset {base!r} is not understood: give {ENGLISH_G2!r} or the characters")


def ctc_length_needed(label: str) -> int:
    """Time steps CTC needs for `label`: one per character plus a blank between each repeat."""
    from .families.ctc import ctc_steps_needed

    return ctc_steps_needed(label)


def ctc_steps(width: int, height: int, model_height: int = MODEL_HEIGHT) -> int:
    """Time steps english_g2's VGG emits for an image of this size, as training feeds it.

    Training pads the line to EasyOCR's width ``ceil(aspect) * model_height``; two 2x2 poolings
    divide it by 4 and the final 2x2 convolution (no padding) removes one more column.
    """
    from .model import Recognizer
    from .preprocess import padded_width

    return max(0, Recognizer.sequence_length(padded_width((max(1, height), max(1, width)), model_height)))


def _audit_family(family: Union[str, ModelFamily], options: Optional[Mapping[str, Any]],
                  model_height: Optional[int]) -> tuple[ModelFamily, dict]:
    """The family and options whose label rule (the one training applies) the audit uses."""
    family = get_family(family)
    config = family.options(options)
    if model_height is not None and int(model_height) != family.img_height(config):
        if "img_height" not in config.field_names():
            raise ConfigError(f"model_height {model_height} does not apply to the {family.name} family "
                              f"(input height {family.img_height(config)}): give family_options instead")
        config = config.replace(img_height=int(model_height))
    return family, config.to_dict()


def _histogram(values: list[float], bins: int = 20, integer: bool = True) -> dict:
    """Equal-width histogram as {"edges": [...], "counts": [...]} (len(edges) = len(counts) + 1)."""
    if not values:
        return {"edges": [], "counts": []}
    lo, hi = min(values), max(values)
    if integer:
        lo, hi = math.floor(lo), math.floor(hi) + 1
        width = max(1, math.ceil((hi - lo) / bins))
        n = max(1, math.ceil((hi - lo) / width))
        edges = [lo + i * width for i in range(n + 1)]
    else:
        if hi == lo:
            hi = lo + 1e-9
        n = bins
        width = (hi - lo) / n
        edges = [round(lo + i * width, 4) for i in range(n + 1)]
    counts = [0] * n
    for v in values:
        i = min(n - 1, int((v - lo) // width))
        counts[i] += 1
    return {"edges": edges, "counts": counts}


def _stats(values: list[float]) -> dict:
    if not values:
        return {}
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "mean": round(statistics.fmean(values), 3)}


@dataclass(frozen=True)
class AuditReport:
    """What :func:`audit_dataset` found. ``to_dict()`` is JSON-able; ``summary()`` is short text."""

    path: str
    base_charset: str
    base_size: int
    counts: dict
    empty_splits: list
    char_counts: dict
    outside_charset: dict
    outside_examples: dict
    label_lengths: dict
    label_length_stats: dict
    images_sampled: dict
    width: dict
    height: dict
    aspect: dict
    unreadable: list
    too_long: list
    too_long_count: int
    max_label_length: Optional[int]
    model_height: int
    rejected: list
    warnings: list = field(default_factory=list)
    #: Characters with fewer than `min_char_count` training examples: {char: count}, rarest first.
    rare_chars: dict = field(default_factory=dict)
    min_char_count: int = 50

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict:
        data = asdict(self)
        data["total"] = self.total
        data["label_lengths"] = {str(k): v for k, v in self.label_lengths.items()}
        return data

    def summary(self) -> str:
        lines = [f"Dataset {self.path}"]
        lines.append("Samples: " + ", ".join(f"{s} {n}" for s, n in self.counts.items())
                     + f" (total {self.total})")
        if self.empty_splits:
            lines.append(f"EMPTY splits: {', '.join(self.empty_splits)}")
        lines.append(f"Characters: {len(self.char_counts)} distinct")
        if self.outside_charset:
            shown = ", ".join(f"{c!r} x{n}" for c, n in list(self.outside_charset.items())[:12])
            example = next(iter(self.outside_examples.values()))[0]
            lines.append(f"Outside {self.base_charset} ({self.base_size} chars): {shown} "
                         f"(e.g. {example!r}): fine-tune with an extended charset")
        else:
            lines.append(f"All characters are in {self.base_charset}")
        if self.label_length_stats:
            st = self.label_length_stats
            lines.append(f"Label length: min {st['min']}, median {st['median']}, max {st['max']}")
        n_img = sum(self.images_sampled.values())
        if n_img:
            w, h, a = self.width["stats"], self.height["stats"], self.aspect["stats"]
            lines.append(f"Images ({n_img} sampled): width {w['min']}..{w['max']} px, "
                         f"height {h['min']}..{h['max']} px, aspect {a['min']:.1f}..{a['max']:.1f}")
        if self.unreadable:
            lines.append(f"Unreadable images: {len(self.unreadable)} (first: {self.unreadable[0]['reason']})")
        if self.too_long_count:
            t = self.too_long[0]
            lines.append(f"Labels too long for their image: {self.too_long_count} (first: {t['split']}#"
                         f"{t['index']} {t['label']!r}: {t['reason']})")
        else:
            lines.append("Labels too long for their image: 0")
        if self.rejected:
            r = self.rejected[0]
            lines.append(f"Rejected at import: {len(self.rejected)} (first: {r['sample']}: {r['reason']})")
        lines.extend(f"Warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def audit_dataset(path: Union[str, Path], base_charset: Union[str, Charset] = ENGLISH_G2,
                  max_label_length: Optional[int] = None, max_images: int = MAX_IMAGES,
                  model_height: Optional[int] = MODEL_HEIGHT, family: Union[str, ModelFamily] = DEFAULT_FAMILY,
                  family_options: Optional[Mapping[str, Any]] = None, min_char_count: int = 50) -> AuditReport:
    """Audit a dataset folder (or a bare LMDB folder) against a base model's charset.

    `max_images` bounds the image headers read per split (evenly spaced); labels are all read.
    A label is flagged when the model `family` could not train on it from its image (the very
    rule training applies, ``family.check_label``: for CTC, its steps at `model_height`, see
    :func:`ctc_steps`) or when it is longer than `max_label_length`. A character with fewer than
    `min_char_count` examples in the training split (all samples when there is none) is listed
    in ``rare_chars`` with a warning: a handful of examples does not teach a new head entry.
    """
    if max_images < 0:
        raise ConfigError(f"max_images must be >= 0, got {max_images}")
    family, options = _audit_family(family, family_options, model_height)
    base_name, base = resolve_charset(base_charset)
    ds = Dataset(path)
    tally = _Tally(base, family, options, max_label_length)
    for split in (list(ds.splits) if "all" in ds.splits else list(SPLITS)):
        if split not in ds.splits:
            tally.counts[split] = 0
            continue
        reader = ds.reader(split)
        try:
            tally.add_split(reader, split, max_images)
        finally:
            reader.close()
    return tally.report(str(path), base_name, ds, min_char_count)


class _Tally:
    """What audit_dataset counts while it reads the splits."""

    def __init__(self, base: Charset, family, options, max_label_length: Optional[int]):
        self.base, self.family, self.options, self.max_label_length = base, family, options, max_label_length
        self.counts: dict[str, int] = {}
        self.chars: Counter = Counter()
        self.train_chars: Counter = Counter()
        self.examples: dict[str, list[str]] = {}
        self.lengths: Counter = Counter()
        self.widths: list[int] = []
        self.heights: list[int] = []
        self.aspects: list[float] = []
        self.sampled: dict[str, int] = {}
        self.unreadable: list[dict] = []
        self.too_long: list[dict] = []
        self.too_long_count = 0

    def add_split(self, reader, split: str, max_images: int) -> None:
        n = len(reader)
        self.counts[split] = n
        step = max(1, math.ceil(n / max_images)) if max_images else 0
        picked = set(range(0, n, step)) if step else set()
        self.sampled[split] = len(picked)
        for i in range(n):
            try:
                label = reader.label(i)
            except (DatasetError, UnicodeDecodeError) as exc:
                self.unreadable.append({"split": split, "index": i, "reason": f"label: {exc}"})
                continue
            self._add_label(split, label)
            reasons = []
            if self.max_label_length is not None and len(label) > self.max_label_length:
                reasons.append(f"{len(label)} characters > max_label_length {self.max_label_length}")
            if i in picked:
                self._add_image(reader, split, i, label, reasons)
            if reasons:
                self.too_long_count += 1
                if len(self.too_long) < _TOO_LONG_LISTED:
                    self.too_long.append({"split": split, "index": i, "label": label, "reason": "; ".join(reasons)})

    def _add_label(self, split: str, label: str) -> None:
        self.chars.update(label)
        if split in ("train", "all"):
            self.train_chars.update(label)
        self.lengths[len(label)] += 1
        for c in set(label):
            if c not in self.base:
                ex = self.examples.setdefault(c, [])
                if len(ex) < _EXAMPLES_PER_CHAR:
                    ex.append(label)

    def _add_image(self, reader, split: str, i: int, label: str, reasons: list) -> None:
        try:
            with Image.open(io.BytesIO(reader.image_bytes(i))) as im:
                w, h = im.size  # header only: no pixel decode
        except Exception as exc:  # PIL raises many types for bad data
            self.unreadable.append({"split": split, "index": i,
                                    "reason": f"{reader.path} sample {i}: {type(exc).__name__}: {exc}"})
            return
        self.widths.append(w)
        self.heights.append(h)
        self.aspects.append(w / max(1, h))
        problem = self.family.check_label(self.family.normalize_label(label, self.options), (h, w), self.options)
        if problem:
            reasons.append(problem)

    def report(self, path: str, base_name: str, ds, min_char_count: int) -> "AuditReport":
        empty = [s for s, n in self.counts.items() if n == 0]
        outside = {c: self.chars[c] for c in sorted(self.examples, key=lambda c: (-self.chars[c], c))}
        warnings = []
        if empty:
            warnings.append(f"split(s) {', '.join(empty)} are empty: training needs train, validation "
                            "needs val; import 3 or more lines with val_fraction and test_fraction above 0 "
                            "(each split then gets at least one line), or add a validation set when training")
        if self.too_long_count > len(self.too_long):
            warnings.append(f"only the first {len(self.too_long)} of {self.too_long_count} too-long labels are listed")
        rejected = [{"sample": r.sample, "label": r.label, "reason": r.reason} for r in ds.rejected()]
        rare = _rare_chars(self.train_chars if self.train_chars else self.chars, self.chars, min_char_count)
        if rare:
            warnings.append(_rare_warning(rare, min_char_count, self.base))
        return AuditReport(
            path=path, base_charset=base_name, base_size=len(self.base), counts=self.counts, empty_splits=empty,
            char_counts=dict(sorted(self.chars.items(), key=lambda kv: (-kv[1], kv[0]))),
            outside_charset=outside, outside_examples={c: self.examples[c] for c in outside},
            label_lengths=dict(sorted(self.lengths.items())), label_length_stats=_stats(list(self.lengths.elements())),
            images_sampled=self.sampled,
            width={"stats": _stats(self.widths), "histogram": _histogram(self.widths)},
            height={"stats": _stats(self.heights), "histogram": _histogram(self.heights)},
            aspect={"stats": _stats(self.aspects), "histogram": _histogram(self.aspects, integer=False)},
            unreadable=self.unreadable, too_long=self.too_long, too_long_count=self.too_long_count,
            max_label_length=self.max_label_length, model_height=self.family.img_height(self.options),
            rejected=rejected, warnings=warnings, rare_chars=rare, min_char_count=min_char_count)


def _rare_chars(train: Counter, every: Counter, minimum: int) -> dict:
    """{char: training count} of the characters seen fewer than `minimum` times, rarest first."""
    rare = {c: train.get(c, 0) for c in every if not c.isspace() and train.get(c, 0) < minimum}
    return dict(sorted(rare.items(), key=lambda kv: (kv[1], kv[0])))


def _rare_warning(rare: dict, minimum: int, base: Charset) -> str:
    shown = ", ".join(f"{c!r} x{n}" + ("" if c in base else " (new)") for c, n in list(rare.items())[:16])
    chars = "".join(rare)[:40].replace("'", "")
    return (f"{len(rare)} character(s) have fewer than {minimum} training examples: {shown}; the model will "
            f"hardly learn them: add lines rich in them, e.g. `ocrtrain synth --rich-in '{chars}' --out "
            "datasets/rare`, and train on both datasets")
