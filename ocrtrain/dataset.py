"""Datasets as folders: ``train/``, ``val/``, ``test/`` LMDBs + ``manifest.json`` + ``rejected.csv``.

:class:`DatasetWriter` builds one atomically: everything goes into a hidden ``.partial`` folder
that is swapped into place only when complete, so a failed generation or import never leaves a
folder that looks like a finished dataset. Overwriting replaces only an ocrtrain dataset (its
manifest carries :data:`DATASET_FORMAT`) or an empty folder, never the source being read (see
:mod:`ocrtrain.replace`). A full disk is a DatasetError saying so. :class:`Dataset` opens one.

rejected.csv keeps the first :data:`MAX_REJECTED_ROWS` rows and then one summary row with the
count of the rest; the manifest's ``rejected`` is the full count.

>>> # with DatasetWriter("out/ds", SplitConfig(seed=1), source={"kind": "demo"}) as w:
>>> #     w.add(png_bytes, "Melk 1 l")
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import random
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Union

from .config import Config, check
from .diskspace import disk_full_message, is_disk_full
from .errors import DatasetError
from .fsutil import now_iso, write_json_atomic
from .lmdb_io import LmdbReader, LmdbWriter, is_lmdb
from .replace import check_replaceable, clean_stale, partial_path, recover_interrupted, swap_into_place

__all__ = ["SPLITS", "MANIFEST", "REJECTED", "DATASET_FORMAT", "MAX_REJECTED_ROWS", "SplitConfig", "DatasetWriter", "Dataset",
           "Rejected", "RejectLog", "is_dataset_folder", "require_dataset_folder", "read_manifest"]

SPLITS = ("train", "val", "test")
MANIFEST = "manifest.json"
REJECTED = "rejected.csv"
#: The ``format`` of our manifest.json; only folders carrying it may be overwritten.
DATASET_FORMAT = "ocrtrain-dataset/1"
#: Rows of rejected.csv written one by one; the rest are counted (a damaged source can reject millions).
MAX_REJECTED_ROWS = 10_000


def read_manifest(path: Union[str, Path]) -> dict:
    """The manifest.json of dataset folder `path` ({} when there is none); DatasetError when damaged."""
    mf = Path(path) / MANIFEST
    if not mf.is_file():
        return {}
    try:
        data = json.loads(mf.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        kind = "UTF-8" if isinstance(exc, UnicodeDecodeError) else "JSON"
        raise DatasetError(f"{mf} is not valid {kind} ({exc}): the file is damaged; re-create the dataset, "
                           "or delete manifest.json to open the LMDBs without it") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{mf} holds a {type(data).__name__}, not a JSON object: the file is damaged; "
                           "re-create the dataset, or delete manifest.json to open the LMDBs without it")
    return data


def is_dataset_folder(path: Union[str, Path]) -> bool:
    """True when `path` holds a manifest.json written by ocrtrain (its format is ours)."""
    try:
        manifest = read_manifest(path)
    except (DatasetError, OSError):
        return False
    fmt = manifest.get("format")
    return isinstance(fmt, str) and fmt.split("/")[0] == DATASET_FORMAT.split("/")[0]


def require_dataset_folder(path: Union[str, Path]) -> Path:
    """`path` as a Path when it is a dataset folder; DatasetError saying what it is and the fix otherwise."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"dataset folder {path} does not exist: check the path (datasets are made by "
                           "`ocrtrain synth`, `ocrtrain import` or the Dataset tab)")
    read_manifest(path)  # a damaged manifest names itself and its fix
    if not is_dataset_folder(path):
        raise DatasetError(f"{path} is not a dataset folder (no {MANIFEST} written by ocrtrain): give a folder "
                           "made by `ocrtrain synth`, `ocrtrain import` or the Dataset tab")
    return path


@dataclass(frozen=True)
class SplitConfig(Config):
    """How samples are divided into train/val/test."""

    val_fraction: float = field(default=0.1, metadata={"help": "share of samples for validation"})
    test_fraction: float = field(default=0.1, metadata={"help": "share of samples for the test split"})
    split_seed: int = field(default=0, metadata={"help": "seed of the random split"})
    skip_duplicates: bool = field(default=False, metadata={"help": "drop samples whose label and image repeat an earlier one"})

    def validate(self) -> None:
        check(0 <= self.val_fraction < 1, f"val_fraction must be in [0, 1), got {self.val_fraction}")
        check(0 <= self.test_fraction < 1, f"test_fraction must be in [0, 1), got {self.test_fraction}")
        check(self.val_fraction + self.test_fraction < 1,
              "val_fraction + test_fraction must leave something for training (sum < 1)")


@dataclass(frozen=True)
class Rejected:
    """A sample that was not written, and why."""

    sample: str
    label: str
    reason: str


_REASON_DETAILS = re.compile(r"'[^']*'|\"[^\"]*\"|\S*[/\\.:]\S*|\d[\d,]*")


class RejectLog:
    """Rejected samples: the first `keep` rows, and a count (per reason) of all of them.

    ``len()`` is the full count; iterating gives the rows kept.
    """

    def __init__(self, keep: Optional[int] = None):
        self.keep = MAX_REJECTED_ROWS if keep is None else keep
        self.rows: list[Rejected] = []
        self.reasons: Counter = Counter()
        self._examples: dict[str, str] = {}
        self._count = 0

    def append(self, row: Rejected) -> None:
        self._count += 1
        # Rows differ by file names, line numbers and quoted text; group by the rest of the wording.
        key = _REASON_DETAILS.sub("_", row.reason)[:160]
        self.reasons[key] += 1
        self._examples.setdefault(key, row.reason)
        if len(self.rows) < self.keep:
            self.rows.append(row)

    def most_common(self, n: int) -> list[tuple[str, int]]:
        """The `n` most frequent kinds of reason: (first reason of that kind, count)."""
        return [(self._examples[key], count) for key, count in self.reasons.most_common(n)]

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Rejected]:
        return iter(self.rows)

    def __getitem__(self, index):
        return self.rows[index]

    def __bool__(self) -> bool:
        return self._count > 0

    @property
    def left_out(self) -> int:
        return self._count - len(self.rows)


class DatasetWriter:
    """Write a dataset folder atomically. Use as a context manager; see module doc."""

    def __init__(self, out: Union[str, Path], split: SplitConfig = SplitConfig(),
                 source: Optional[dict] = None, overwrite: bool = False, protect: tuple = ()):
        self.out = Path(out)
        self.protect = tuple(Path(p) for p in protect)
        if self.out.parent.is_dir():
            clean_stale(self.out)  # leftovers of a killed run writing the same folder
        check_replaceable(self.out, overwrite, is_dataset_folder, self.protect)
        self.split = split
        self.source = dict(source or {})
        self.overwrite = overwrite
        self._tmp = partial_path(self.out)
        self._writers: dict[str, LmdbWriter] = {}
        try:
            if self._tmp.exists():
                shutil.rmtree(self._tmp)
            self._tmp.mkdir(parents=True)
            for s in SPLITS:
                self._writers[s] = LmdbWriter(self._tmp / s)
        except (OSError, DatasetError) as exc:
            for w in self._writers.values():
                w.abort()
            shutil.rmtree(self._tmp, ignore_errors=True)
            if isinstance(exc, DatasetError):
                raise self._lmdb_error(exc) from None
            raise self._os_error(exc) from None
        self._rng = random.Random(split.split_seed)
        self._seen: set[bytes] = set()
        self._hash = hashlib.sha256()
        self._chars: Counter = Counter()
        self.counts = {s: 0 for s in SPLITS}
        self.rejected = RejectLog()
        self._closed = False
        self._started = time.time()

    def _pick_split(self) -> str:
        r = self._rng.random()
        if r < self.split.test_fraction:
            return "test"
        if r < self.split.test_fraction + self.split.val_fraction:
            return "val"
        return "train"

    def add(self, image: bytes, label: str, sample: str = "", split: Optional[str] = None) -> bool:
        """Write one sample (to `split`, or a seeded random one). False if skipped as duplicate."""
        # Draw the split first so the assignment of later samples does not depend on duplicates.
        chosen = split or self._pick_split()
        if chosen not in SPLITS:
            raise DatasetError(f"unknown split {chosen!r} for sample {sample}: use one of {SPLITS}")
        digest = hashlib.sha256(label.encode("utf-8") + b"\0" + image).digest()
        if self.split.skip_duplicates and digest in self._seen:
            self.reject(sample, label, "duplicate of an earlier sample (skip_duplicates is on)")
            return False
        self._seen.add(digest)
        self._hash.update(digest)
        try:
            self._writers[chosen].add(image, label)
        except DatasetError as exc:
            self.abort()  # before the message, so its free space counts the room the partial folder held
            raise self._lmdb_error(exc) from None
        self.counts[chosen] += 1
        self._chars.update(label)
        return True

    def reject(self, sample: str, label: str, reason: str) -> None:
        """Record a sample that was not written, with a reason naming the fix."""
        self.rejected.append(Rejected(str(sample), label, reason))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _os_error(self, exc: OSError) -> DatasetError:
        if is_disk_full(exc):  # the folder the user named (the partial one is gone by now), said once
            return DatasetError(disk_full_message(self.out, exc, "writing the dataset"))
        return DatasetError(f"cannot write the dataset {self.out} ({exc}): check the folder's permissions and "
                            "the disk, then run again; nothing was kept")

    def _lmdb_error(self, exc: DatasetError) -> DatasetError:
        """`exc` naming the dataset folder the user asked for, not the hidden ``.partial`` one the
        LMDBs were written in (an implementation detail, and deleted by the time they read it)."""
        cause = exc.__context__  # the OSError or lmdb.Error LmdbWriter raised from
        text = disk_full_message(self.out, cause, "writing the dataset") \
            if cause is not None and is_disk_full(cause) else str(exc)
        # lmdb.Error's words start with the LMDB's path ("DIR/.NAME.partial-PID/val: No space left").
        text = re.sub(re.escape(str(self._tmp)) + r"[^\s:]*: ", "", text)
        return DatasetError(text.replace(str(self._tmp), str(self.out)))

    def close(self, extra: Optional[dict] = None) -> Path:
        """Finish: write rejected.csv and manifest, then swap the folder into place."""
        if self._closed:
            return self.out
        if self.total == 0:
            reasons = self.rejected.most_common(3)
            self.abort()
            raise DatasetError(
                f"no usable samples for {self.out} ({len(self.rejected)} rejected"
                + (f"; most common reasons: {reasons}" if reasons else "")
                + "): fix the input and try again"
            )
        try:
            for w in self._writers.values():
                w.close()
            self._write_files(extra)
            # Checked again: the folder may have appeared (or changed) while this one was written.
            check_replaceable(self.out, self.overwrite, is_dataset_folder, self.protect)
            swap_into_place(self._tmp, self.out)
        except (OSError, DatasetError) as exc:
            self.abort()
            if isinstance(exc, DatasetError):
                raise self._lmdb_error(exc) from None
            raise self._os_error(exc) from None
        self._closed = True
        return self.out

    def _write_files(self, extra: Optional[dict]) -> None:
        # rejected.csv first: a folder holding a manifest is complete.
        with open(self._tmp / REJECTED, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["sample", "label", "reason"])
            for r in self.rejected:
                writer.writerow([r.sample, r.label, r.reason])
            if self.rejected.left_out:
                top = "; ".join(f"{n:,} like: {reason}" for reason, n in self.rejected.most_common(5))
                writer.writerow(["...", "", f"{self.rejected.left_out:,} more rejected samples not listed "
                                            f"(of {len(self.rejected):,}; most common: {top})"])
        manifest = {
            "format": DATASET_FORMAT,
            "created": now_iso(),
            "seconds": round(time.time() - self._started, 3),
            "source": self.source,
            "split": self.split.to_dict(),
            "counts": dict(self.counts),
            "total": self.total,
            "rejected": len(self.rejected),
            "charset": "".join(sorted(self._chars)),
            "char_counts": dict(sorted(self._chars.items())),
            "content_hash": self._hash.hexdigest(),
        }
        manifest.update(extra or {})
        write_json_atomic(self._tmp / MANIFEST, manifest)

    def abort(self) -> None:
        """Drop everything written so far."""
        for w in self._writers.values():
            w.abort()
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._closed = True

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class Dataset:
    """An opened dataset folder (or a bare LMDB folder treated as a single split)."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        if not self.path.exists():
            recover_interrupted(self.path)  # a replacement killed between its two renames
        if not self.path.is_dir():
            raise DatasetError(f"dataset folder {self.path} does not exist: run `ocrtrain synth` or `ocrtrain import` first")
        if is_lmdb(self.path):
            self.manifest: dict = {}
            self.splits = {"all": self.path}
        else:
            self.manifest = read_manifest(self.path)
            self.splits = {s: self.path / s for s in SPLITS if is_lmdb(self.path / s)}
            if not self.splits:
                raise DatasetError(
                    f"{self.path} holds no train/val/test LMDBs and is not an LMDB itself: "
                    "point at a folder written by `ocrtrain synth`/`ocrtrain import`"
                )

    def reader(self, split: str) -> LmdbReader:
        if split not in self.splits:
            raise DatasetError(f"{self.path} has no {split!r} split (has {sorted(self.splits)})")
        return LmdbReader(self.splits[split])

    def counts(self) -> dict[str, int]:
        return {s: len(LmdbReader(p)) for s, p in self.splits.items()}

    def rejected(self) -> list[Rejected]:
        path = self.path / REJECTED
        if not path.is_file():
            return []
        with open(path, newline="", encoding="utf-8") as fh:
            return [Rejected(r["sample"], r["label"], r["reason"]) for r in csv.DictReader(fh)]

    def iter_samples(self, split: str) -> Iterator[tuple[bytes, str]]:
        r = self.reader(split)
        for i in range(len(r)):
            yield r[i]
