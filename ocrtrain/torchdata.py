"""A torch Dataset over one LMDB split, yielding (grayscale PIL image, label).

The LMDB is opened lazily and reopened in each DataLoader worker process (by
:class:`ocrtrain.lmdb_io.LmdbReader`), so ``num_workers > 0`` is safe.

>>> # ds = LmdbTextDataset("data/receipts/train", charset=cs, skip_unencodable=True)
>>> # image, label = ds[0]; ds.skipped[:3]
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from torch.utils.data import Dataset

from .charset import Charset
from .errors import DatasetError, InputError
from .images import decode_image
from .lmdb_io import LmdbReader

__all__ = ["LmdbTextDataset", "Skipped"]


@dataclass(frozen=True)
class Skipped:
    """A sample left out at construction: its LMDB index (0-based), label and why."""

    index: int
    label: str
    reason: str


class LmdbTextDataset(Dataset):
    """Samples of an LMDB split as ``(PIL.Image mode 'L', label)``, or ``(transform(image), label)``.

    With `charset`, every label must be encodable: unencodable ones raise DatasetError unless
    `skip_unencodable`, which leaves them out and records each in :attr:`skipped`.
    """

    def __init__(self, path: Union[str, Path], transform: Optional[Callable] = None,
                 charset: Optional[Charset] = None, skip_unencodable: bool = False):
        self.path = Path(path)
        self.reader = LmdbReader(self.path)
        self.transform = transform
        self.charset = charset
        self.skipped: list[Skipped] = []
        self._labels: list[str] = []
        for i in range(len(self.reader)):
            try:
                self._labels.append(self.reader.label(i))
            except UnicodeDecodeError:
                raise DatasetError(f"{self.path} sample {i} has a label that is not UTF-8: "
                                   "re-create the LMDB with `ocrtrain import`") from None
        if charset is None:
            self.indices = list(range(len(self._labels)))
            return
        self.indices = []
        for i, label in enumerate(self._labels):
            bad = charset.missing(label)
            if not bad:
                self.indices.append(i)
                continue
            reason = f"characters {sorted(bad)} are outside the charset"
            if not skip_unencodable:
                raise DatasetError(
                    f"{self.path} sample {i} label {label!r} has {reason}: extend the charset "
                    "(charset mode 'extend') or pass skip_unencodable=True"
                )
            self.skipped.append(Skipped(i, label, reason))

    def __len__(self) -> int:
        return len(self.indices)

    def label(self, i: int) -> str:
        """Label of item `i` without decoding its image (for samplers and statistics)."""
        return self._labels[self.indices[i]]

    def __getitem__(self, i: int):
        if not -len(self.indices) <= i < len(self.indices):
            raise IndexError(f"item {i} out of range for {len(self.indices)} samples in {self.path}")
        index = self.indices[i]
        data = self.reader.image_bytes(index)
        try:
            image = decode_image(data, f"{self.path} sample {index}", mode="L")
        except InputError as exc:
            raise DatasetError(f"{exc} (LMDB {self.path}, index {index}): re-create this split") from None
        if self.transform is not None:
            image = self.transform(image)
        return image, self._labels[index]
