"""LmdbTextDataset: PIL 'L' images + labels, charset filtering, worker processes, decode errors."""
from __future__ import annotations

import os
import pickle

import pytest
from PIL import Image
from torch.utils.data import DataLoader

from conftest import draw_line, png_bytes
from ocrtrain.charset import Charset, english_g2_charset
from ocrtrain.dataset import Dataset
from ocrtrain.errors import DatasetError
from ocrtrain.lmdb_io import LmdbWriter
from ocrtrain.torchdata import LmdbTextDataset


def test_items_are_gray_pil_and_labels(tiny_dataset):
    reader = Dataset(tiny_dataset).reader("train")
    ds = LmdbTextDataset(tiny_dataset / "train")
    assert len(ds) == len(reader)
    image, label = ds[0]
    assert isinstance(image, Image.Image) and image.mode == "L"
    assert label == reader.label(0) and ds.label(0) == label
    assert image.size == draw_line(label).size
    assert ds[-1][1] == reader.label(len(reader) - 1)
    with pytest.raises(IndexError):
        ds[len(ds)]
    sized = LmdbTextDataset(tiny_dataset / "train", transform=lambda im: im.size)
    assert sized[0][0] == image.size


def test_charset_filter_records_skipped(tiny_dataset):
    path = tiny_dataset / "train"
    labels = list(Dataset(tiny_dataset).reader("train").labels())
    cs = english_g2_charset()
    ds = LmdbTextDataset(path, charset=cs, skip_unencodable=True)
    bad = [i for i, l in enumerate(labels) if cs.missing(l)]
    assert bad and len(bad) < len(labels)  # the fixture mixes plain and Norwegian labels
    assert [s.index for s in ds.skipped] == bad
    assert all(s.label == labels[s.index] and "outside the charset" in s.reason for s in ds.skipped)
    assert len(ds) == len(labels) - len(bad)
    assert all(not cs.missing(ds[i][1]) for i in range(len(ds)))
    with pytest.raises(DatasetError, match=r"sample \d+ label .* skip_unencodable"):
        LmdbTextDataset(path, charset=cs)
    full = Charset(sorted(set("".join(labels))))
    assert LmdbTextDataset(path, charset=full).skipped == []


class Probe(LmdbTextDataset):
    """Reports which process read each item and which process the LMDB handle belongs to."""

    def __getitem__(self, i):
        _, label = super().__getitem__(i)
        return label, os.getpid(), self.reader._pid


def _collate(batch):
    return batch


def test_dataloader_two_workers_reopen_lmdb(tiny_dataset):
    ds = Probe(tiny_dataset / "train")
    ds[0]  # opened in the parent first: workers must not reuse this handle
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=_collate)
    rows = [row for batch in loader for row in batch]
    assert [r[0] for r in rows] == [ds.label(i) for i in range(len(ds))]
    pids = {r[1] for r in rows}
    assert os.getpid() not in pids and len(pids) == 2
    assert all(r[1] == r[2] for r in rows)  # each worker opened its own environment


def test_pickle_round_trip(tiny_dataset):
    ds = LmdbTextDataset(tiny_dataset / "val")
    ds[0]
    copy = pickle.loads(pickle.dumps(ds))
    assert copy[0][1] == ds[0][1] and len(copy) == len(ds)


def test_decode_failure_names_path_and_index(tmp_path):
    path = tmp_path / "lmdb"
    with LmdbWriter(path) as w:
        w.add(png_bytes(draw_line("Ost")), "Ost")
        w.add(b"\x89PNG\r\n\x1a\nnot really", "Egg")
    ds = LmdbTextDataset(path)
    assert ds[0][1] == "Ost"
    with pytest.raises(DatasetError) as err:
        ds[1]
    assert str(path) in str(err.value) and "index 1" in str(err.value)


def test_not_an_lmdb(tmp_path):
    with pytest.raises(DatasetError, match="not an LMDB"):
        LmdbTextDataset(tmp_path)
