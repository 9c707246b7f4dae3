"""Datasets as folders: ``train/``, ``val/``, ``test/`` LMDBs + ``manifest.json`` + ``rejected.csv``.

:class:`DatasetWriter` builds one atomically: everything goes into a hidden ``.partial`` folder
that is renamed into place only when complete, so a failed generation or import never leaves a
folder that looks like a finished dataset. :class:`Dataset` opens one.

>>> # with DatasetWriter("out/ds", SplitConfig(seed=1), source={"kind": "demo"}) as w:
>>> #     w.add(png_bytes, "Melk 1 l")
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Union

from .config import Config, check
from .errors import DatasetError
from .fsutil import write_json_atomic  # re-exported: other modules import it from here
from .lmdb_io import LmdbReader, LmdbWriter, is_lmdb

__all__ = ["SPLITS", "SplitConfig", "DatasetWriter", "Dataset", "Rejected", "write_json_atomic"]

SPLITS = ("train", "val", "test")
MANIFEST = "manifest.json"
REJECTED = "rejected.csv"


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


class DatasetWriter:
    """Write a dataset folder atomically. Use as a context manager; see module doc."""

    def __init__(self, out: Union[str, Path], split: SplitConfig = SplitConfig(),
                 source: Optional[dict] = None, overwrite: bool = False):
        self.out = Path(out)
        if self.out.exists() and any(self.out.iterdir()) and not overwrite:
            raise DatasetError(f"{self.out} already exists and is not empty: choose a new folder or pass overwrite")
        self.split = split
        self.source = dict(source or {})
        self.overwrite = overwrite
        self._tmp = self.out.parent / f".{self.out.name}.partial-{os.getpid()}"
        if self._tmp.exists():
            shutil.rmtree(self._tmp)
        self._tmp.mkdir(parents=True)
        self._writers = {s: LmdbWriter(self._tmp / s) for s in SPLITS}
        self._rng = random.Random(split.split_seed)
        self._seen: set[bytes] = set()
        self._hash = hashlib.sha256()
        self._chars: Counter = Counter()
        self.counts = {s: 0 for s in SPLITS}
        self.rejected: list[Rejected] = []
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
        self._writers[chosen].add(image, label)
        self.counts[chosen] += 1
        self._chars.update(label)
        return True

    def reject(self, sample: str, label: str, reason: str) -> None:
        """Record a sample that was not written, with a reason naming the fix."""
        self.rejected.append(Rejected(str(sample), label, reason))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def close(self, extra: Optional[dict] = None) -> Path:
        """Finish: write manifest and rejected.csv, then move the folder into place."""
        if self._closed:
            return self.out
        if self.total == 0:
            reasons = Counter(r.reason for r in self.rejected).most_common(3)
            self.abort()
            raise DatasetError(
                f"no usable samples for {self.out} ({len(self.rejected)} rejected"
                + (f"; most common reasons: {reasons}" if reasons else "")
                + "): fix the input and try again"
            )
        for w in self._writers.values():
            w.close()
        manifest = {
            "format": "ocrtrain-dataset/1",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
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
        with open(self._tmp / REJECTED, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["sample", "label", "reason"])
            for r in self.rejected:
                writer.writerow([r.sample, r.label, r.reason])
        if self.out.exists():
            if not self.overwrite:
                self.abort()
                raise DatasetError(f"{self.out} appeared while writing: choose a new folder")
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            os.replace(self.out, old)
            os.replace(self._tmp, self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self._tmp, self.out)
        self._closed = True
        return self.out

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
        if not self.path.is_dir():
            raise DatasetError(f"dataset folder {self.path} does not exist: run `ocrtrain synth` or `ocrtrain import` first")
        if is_lmdb(self.path):
            self.manifest: dict = {}
            self.splits = {"all": self.path}
        else:
            mf = self.path / MANIFEST
            self.manifest = json.loads(mf.read_text(encoding="utf-8")) if mf.is_file() else {}
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
