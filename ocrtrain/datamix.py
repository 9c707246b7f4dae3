"""What a run trains and validates on: a weighted mixture of dataset folders and named validation sets.

Like EasyOCR's ``select_data``/``batch_ratio``: each training source gets a share of every batch in
proportion to its weight, whatever the sources' sizes; an epoch is one pass over the FIRST source
(the others are reshuffled and repeated as needed). Validation sets are logged separately; the
first one (by default the first source's ``val`` split, named ``val``) drives best-checkpoint
selection and early stopping unless ``TrainConfig.select`` says otherwise.

>>> spec = DataSpec.parse(["real:1", "synth:1"], ["general=gen/val"])
>>> [(s.path, s.weight) for s in spec.train], [(v.name, v.path) for v in spec.val]
([('real', 1.0), ('synth', 1.0)], [('general', 'gen/val')])
>>> batch_shares([1.0, 1.0, 2.0], 10)
[3, 2, 5]
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from .errors import ConfigError, DatasetError
from .events import Callback, Message, emit

__all__ = ["TrainSource", "ValSource", "DataSpec", "batch_shares", "val_split_path", "GENERAL_SET",
           "general_val_source", "with_general", "with_replay", "is_replay", "replay_source_path",
           "replay_source_folder", "ensure_replay_sources", "REPLAY_PREFIX"]

PathLike = Union[str, Path]
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,39}$")
_WEIGHT = re.compile(r"^(.+):([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)$")


@dataclass(frozen=True)
class TrainSource:
    """One training dataset folder and its share of each batch."""

    path: str
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "TrainSource":
        """``DIR`` or ``DIR:WEIGHT`` (a trailing ``:number`` is the weight, so ``C:\\data`` stays a path)."""
        found = _WEIGHT.match(str(text))
        if found and not re.match(r"^[A-Za-z]$", found.group(1)):
            return cls(found.group(1), float(found.group(2)))
        return cls(str(text), 1.0)


@dataclass(frozen=True)
class ValSource:
    """A named validation set: a dataset folder (its val split) or one split's LMDB folder."""

    name: str
    path: str

    @classmethod
    def parse(cls, text: str) -> "ValSource":
        """``NAME=DIR_OR_SPLIT`` or a bare path (named after its folder)."""
        text = str(text)
        name, sep, path = text.partition("=")
        if not sep:
            p = Path(text)
            name = p.parent.name if p.name in ("val", "test", "train") and p.parent.name else p.name
            path = text
        return cls(name.strip(), path.strip())


@dataclass(frozen=True)
class DataSpec:
    """Training sources (weighted) and validation sets of one run."""

    train: tuple[TrainSource, ...]
    val: tuple[ValSource, ...] = ()

    @classmethod
    def parse(cls, data: Iterable[str], val: Iterable[str] = ()) -> "DataSpec":
        """From CLI-style texts: ``--data DIR[:WEIGHT]`` (repeatable) and ``--val NAME=DIR_OR_SPLIT``."""
        return cls(tuple(TrainSource.parse(t) for t in data), tuple(ValSource.parse(t) for t in val))

    @classmethod
    def of(cls, data: Any) -> "DataSpec":
        """Accept a DataSpec, one path, a list of paths / ``DIR:WEIGHT`` texts, or a stored dict."""
        if isinstance(data, DataSpec):
            return data
        if isinstance(data, (str, Path)):
            return cls((TrainSource(str(data)),))
        if isinstance(data, dict):
            return cls.from_dict(data)
        if isinstance(data, (list, tuple)):
            return cls.parse([str(d) for d in data])
        raise ConfigError(f"training data must be a dataset folder path or a DataSpec, got {data!r}")

    @classmethod
    def from_dict(cls, data: dict) -> "DataSpec":
        try:
            return cls(tuple(TrainSource(str(s["path"]), float(s.get("weight", 1.0))) for s in data["train"]),
                       tuple(ValSource(str(v["name"]), str(v["path"])) for v in data.get("val", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"stored data spec {data!r} is damaged ({exc}): start a new run") from None

    def to_dict(self) -> dict:
        return {"train": [{"path": s.path, "weight": s.weight} for s in self.train],
                "val": [{"name": v.name, "path": v.path} for v in self.val]}

    def resolved(self) -> "DataSpec":
        """Absolute paths, and the default validation set (the first source's val split, named "val")."""
        train = tuple(TrainSource(str(Path(s.path).resolve()), s.weight) for s in self.train)
        val = tuple(ValSource(v.name, str(Path(v.path).resolve())) for v in self.val)
        if not val and train:
            val = (ValSource("val", train[0].path),)
        return DataSpec(train, val)

    def check(self) -> None:
        """Validate the mixture up front (ConfigError/DatasetError saying what to change)."""
        if not self.train:
            raise ConfigError("no training data: give at least one dataset folder (--data DIR)")
        for s in self.train:
            if not (s.weight >= 0 and s.weight < float("inf")):
                raise ConfigError(f"weight {s.weight} of {s.path} must be a finite number >= 0: e.g. --data {s.path}:1")
        if sum(s.weight for s in self.train) <= 0:
            raise ConfigError("the training weights sum to 0: give at least one source a weight > 0 "
                              "(e.g. --data DIR:1)")
        if self.train[0].weight <= 0:
            raise ConfigError(f"the first source {self.train[0].path} has weight 0, but an epoch is one pass over "
                              "the first source: put a source with weight > 0 first")
        names = [v.name for v in self.val]
        for name in names:
            if not _NAME.match(name):
                raise ConfigError(f"validation set name {name!r} is not allowed: use letters, digits, '-', '_', '.' "
                                  "(at most 40), e.g. --val general=DIR")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"validation set name(s) {dup} used twice: give each --val a different NAME=")
        for s in self.train:
            split = _require_split(Path(s.path), "train", "training source")
            if _count(split) == 0:
                raise DatasetError(f"training source {s.path} has an empty train split (0 lines): generate or "
                                   "import training lines first, or leave this source out")
        for v in self.val:
            val_split_path(v.path, v.name)


def _require_split(folder: Path, split: str, what: str) -> Path:
    from .lmdb_io import is_lmdb

    if not folder.is_dir():
        raise DatasetError(f"{what} {folder} does not exist: check the path (datasets are made by "
                           "`ocrtrain synth` or `ocrtrain import`)")
    if not is_lmdb(folder / split):
        have = sorted(p.name for p in folder.iterdir() if p.is_dir() and is_lmdb(p))
        raise DatasetError(f"{what} {folder} has no {split!r} split (has {have or 'none'}): training needs a "
                           f"{split} LMDB; regenerate it with `ocrtrain synth`/`ocrtrain import`"
                           + (" (val_fraction > 0)" if split == "val" else ""))
    return folder / split


def _count(split: Path) -> int:
    from .lmdb_io import LmdbReader

    return len(LmdbReader(split))


def val_split_path(path: PathLike, name: str = "val") -> Path:
    """The LMDB folder a validation set reads: PATH itself if it is an LMDB, else PATH/val."""
    from .lmdb_io import is_lmdb

    path = Path(path)
    if is_lmdb(path):
        return path
    return _require_split(path, "val", f"validation set {name!r}:")


def batch_shares(weights: Sequence[float], batch_size: int) -> list[int]:
    """Lines of each source in a batch of `batch_size`: proportional to the weights (largest remainder),
    at least one for every source with weight > 0 when the batch is big enough."""
    total = float(sum(weights))
    raw = [batch_size * w / total for w in weights]
    shares = [int(r) for r in raw]
    rest = batch_size - sum(shares)
    for i in sorted(range(len(raw)), key=lambda i: (-(raw[i] - shares[i]), i))[:rest]:
        shares[i] += 1
    positive = [i for i, w in enumerate(weights) if w > 0]
    if batch_size >= len(positive):
        for i in positive:
            if shares[i] == 0:
                donor = max(range(len(shares)), key=lambda j: shares[j])
                shares[donor] -= 1
                shares[i] += 1
    return shares


def describe(spec: DataSpec, counts: Optional[Sequence[int]] = None) -> str:
    """One line for the log: ``real (120 lines, weight 1) + synth (4000 lines, weight 1)``."""
    parts = []
    for i, s in enumerate(spec.train):
        n = f"{counts[i]} lines, " if counts is not None else ""
        parts.append(f"{Path(s.path).name} ({n}weight {s.weight:g})")
    return " + ".join(parts)


#: Name of the built-in validation set that watches for forgetting (see TrainConfig.general_val).
GENERAL_SET = "general"


def general_val_source(count: int, seed: int = 0) -> ValSource:
    """The built-in general validation set (:mod:`ocrtrain.general`: real-looking Latin text the base
    model already reads) of `count` lines, rendered once into the cache folder and reused."""
    from .fsutil import file_lock
    from .general import GENERAL_VERSION, generate_general_set
    from .home import cache_root
    from .lmdb_io import is_lmdb

    folder = cache_root() / f"general-v{GENERAL_VERSION}-n{count}-s{seed}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(folder.parent / f".{folder.name}.lock"):
        if not is_lmdb(folder / "val"):
            # val and test alternate, so 2 x count lines give `count` validation lines.
            generate_general_set(folder, count=2 * count, seed=seed, overwrite=folder.exists())
    return ValSource(GENERAL_SET, str(folder / "val"))


def with_general(spec: DataSpec, count: int) -> DataSpec:
    """`spec` plus the general set (after the default/first set) unless it has one or `count` is 0."""
    if count <= 0 or any(v.name == GENERAL_SET for v in spec.val):
        return spec
    spec = spec.resolved()
    return DataSpec(spec.train, spec.val + (general_val_source(count),))


#: Folder-name prefix of the built-in replay sources (general text lines trained alongside the data).
REPLAY_PREFIX = "general-replay-"
#: Seed of the replay lines: never the general validation set's (seed 0) or a bench's held-out seeds.
REPLAY_SEED = 1000


def replay_source_folder(count: int, seed: int = REPLAY_SEED) -> Path:
    """Where the dataset folder of `count` general replay lines lives in the cache (not rendered here)."""
    from .general import GENERAL_VERSION
    from .home import cache_root

    return cache_root() / f"{REPLAY_PREFIX}v{GENERAL_VERSION}-n{count}-s{seed}"


def replay_source_path(count: int, seed: int = REPLAY_SEED, callback: Optional[Callback] = None) -> Path:
    """The dataset folder of `count` general replay lines (rendered once into the cache, reused)."""
    return _render_replay(replay_source_folder(count, seed), count, seed, callback)


def _render_replay(folder: Path, count: int, seed: int, callback: Optional[Callback]) -> Path:
    from .fsutil import file_lock
    from .general import generate_replay_set
    from .lmdb_io import is_lmdb

    folder.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(folder.parent / f".{folder.name}.lock"):
        if not is_lmdb(folder / "train"):
            emit(callback, Message(f"rendering {count} general replay lines once (cached in {folder}; "
                                   "later runs reuse them)"))
            generate_replay_set(folder, count=count, seed=seed, overwrite=folder.exists(), callback=callback)
    return folder


def ensure_replay_sources(spec: DataSpec, callback: Optional[Callback] = None) -> None:
    """Render the built-in replay sources of `spec` that are not there yet (a new run, or a cache
    cleared since the run started: the lines and images come out the same every time)."""
    from .general import GENERAL_VERSION

    for source in spec.train:
        if not is_replay(source.path):
            continue
        found = re.fullmatch(rf"{REPLAY_PREFIX}v(\d+)-n(\d+)-s(\d+)", Path(source.path).name)
        if not found or int(found.group(1)) != GENERAL_VERSION:
            raise DatasetError(f"replay source {source.path} was made by another version of ocrtrain.general "
                               f"(this one is v{GENERAL_VERSION}): start a new run (its replay lines are "
                               "rendered again) or train with --replay 0")
        _render_replay(Path(source.path), int(found.group(2)), int(found.group(3)), callback)


def is_replay(path: PathLike) -> bool:
    """Whether a training source is a built-in replay source."""
    return Path(path).name.startswith(REPLAY_PREFIX)


def with_replay(spec: DataSpec, share: float, count: int) -> DataSpec:
    """`spec` plus a replay source taking `share` of every batch (0 < share < 1), unless it has one.

    The replay weight is ``share / (1 - share)`` times the sum of the other weights, so the user's
    sources keep their proportions among themselves."""
    if share <= 0 or any(is_replay(s.path) for s in spec.train):
        return spec
    spec = spec.resolved()
    weight = share / (1.0 - share) * sum(s.weight for s in spec.train)
    return DataSpec(spec.train + (TrainSource(str(replay_source_folder(count)), weight),), spec.val)
