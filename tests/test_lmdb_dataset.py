"""Foundation: LmdbWriter/LmdbReader (DTRB layout, map growth, sharing) and DatasetWriter/Dataset."""
from __future__ import annotations

import csv
import json
import os

import pytest

from conftest import draw_line, png_bytes
from ocrtrain.dataset import Dataset, DatasetWriter, SplitConfig
from ocrtrain.errors import ConfigError, DatasetError
from ocrtrain.lmdb_io import LmdbReader, LmdbWriter, is_lmdb


def test_round_trip_meta_and_errors(tmp_path):
    path = tmp_path / "x"
    with LmdbWriter(path) as w:
        assert w.add(b"img-a", "Brød") == 0
        assert w.add(b"img-b", "Øl 3") == 1
        w.set_meta("charset", "Brød Øl3")
    assert is_lmdb(path) and not is_lmdb(tmp_path)
    r = LmdbReader(path)
    assert len(r) == 2 and r[1] == (b"img-b", "Øl 3") and list(r.labels()) == ["Brød", "Øl 3"]
    assert r.meta("charset") == "Brød Øl3" and r.meta("missing", 7) == 7
    with pytest.raises(IndexError):
        r.label(2)
    with pytest.raises(DatasetError, match="already holds an LMDB"):
        LmdbWriter(path)
    with pytest.raises(DatasetError, match="not an LMDB"):
        LmdbReader(tmp_path / "nothing")


def test_commit_every_and_abort(tmp_path):
    with LmdbWriter(tmp_path / "many", commit_every=3) as w:
        for i in range(20):
            w.add(b"%d" % i, f"l{i}")
    r = LmdbReader(tmp_path / "many")
    assert len(r) == 20 and r[13] == (b"13", "l13")
    w = LmdbWriter(tmp_path / "cut", commit_every=1)
    w.add(b"a", "a")
    w.add(b"b", "b")
    w.abort()  # data committed, but no num-samples: reads as an interrupted write
    with pytest.raises(DatasetError, match="num-samples"):
        LmdbReader(tmp_path / "cut")


def test_map_grows_past_initial_size_without_huge_file(tmp_path):
    blobs = [os.urandom(1 << 20) for _ in range(24)]  # 24 MiB incompressible > 16 MiB initial map
    path = tmp_path / "big"
    with LmdbWriter(path, commit_every=4) as w:
        for i, b in enumerate(blobs):
            w.add(b, f"blob {i}")
    r = LmdbReader(path)
    assert len(r) == 24 and r.image_bytes(0) == blobs[0] and r.image_bytes(23) == blobs[23]
    size = (path / "data.mdb").stat().st_size
    data = sum(map(len, blobs))
    assert data <= size < 1.5 * data, (size, data)
    assert os.stat(path / "data.mdb").st_blocks * 512 < 1.5 * data  # not a sparse giant either


def test_two_readers_same_lmdb_share_and_close(tmp_path):
    with LmdbWriter(tmp_path / "x") as w:
        w.add(b"a", "a")
    r1, r2 = LmdbReader(tmp_path / "x"), LmdbReader(tmp_path / "x")
    r1.close()
    assert r2.label(0) == "a"  # closing one reader does not close the other's environment
    r1.close()  # idempotent
    assert r1.label(0) == "a"  # and a closed reader reopens lazily


def write_dataset(out, labels, split=SplitConfig(), **kw):
    with DatasetWriter(out, split, source={"kind": "test"}, **kw) as w:
        for i, label in enumerate(labels):
            w.add(png_bytes(draw_line(label)), label, sample=f"s{i}")
    return Dataset(out)


def split_of(ds: Dataset) -> dict[str, str]:
    return {label: s for s in ds.splits for label in ds.reader(s).labels()}


LABELS = [f"Vare {i} kr {i * 3},50" for i in range(30)]


def test_dataset_manifest_counts_charset_hash(tmp_path):
    ds = write_dataset(tmp_path / "a", LABELS, SplitConfig(val_fraction=0.2, test_fraction=0.2, split_seed=4))
    m = ds.manifest
    assert m["counts"] == ds.counts() and m["total"] == 30 == sum(m["counts"].values())
    assert m["charset"] == "".join(sorted(set("".join(LABELS))))
    assert m["char_counts"]["5"] == "".join(LABELS).count("5")
    assert m["source"] == {"kind": "test"} and m["split"]["split_seed"] == 4
    again = write_dataset(tmp_path / "b", LABELS, SplitConfig(val_fraction=0.2, test_fraction=0.2, split_seed=4))
    assert again.manifest["content_hash"] == m["content_hash"]
    other = write_dataset(tmp_path / "c", LABELS[:-1] + ["changed"])
    assert other.manifest["content_hash"] != m["content_hash"]
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_split_is_deterministic_by_seed(tmp_path):
    cfg = SplitConfig(val_fraction=0.3, test_fraction=0.3, split_seed=11)
    a = split_of(write_dataset(tmp_path / "a", LABELS, cfg))
    b = split_of(write_dataset(tmp_path / "b", LABELS, cfg))
    c = split_of(write_dataset(tmp_path / "c", LABELS, cfg.replace(split_seed=12)))
    assert a == b and a != c
    assert set(a.values()) == {"train", "val", "test"}


def test_skip_duplicates(tmp_path):
    labels = LABELS[:5] + LABELS[:2]
    cfg = SplitConfig(val_fraction=0.3, test_fraction=0.3, split_seed=2)
    ds = write_dataset(tmp_path / "d", labels, cfg.replace(skip_duplicates=True))
    assert ds.manifest["total"] == 5 and ds.manifest["rejected"] == 2
    assert [r.sample for r in ds.rejected()] == ["s5", "s6"]
    assert all("duplicate" in r.reason for r in ds.rejected())
    # the kept samples land in the same splits as without duplicates (a split is drawn for each)
    plain = split_of(write_dataset(tmp_path / "e", labels[:5] + ["x", "y"], cfg))
    assert split_of(ds) == {k: v for k, v in plain.items() if k in labels}
    assert write_dataset(tmp_path / "f", labels, cfg).manifest["total"] == 7


def test_atomic_on_error_and_empty(tmp_path):
    out = tmp_path / "ds"
    with pytest.raises(RuntimeError):
        with DatasetWriter(out) as w:
            w.add(png_bytes(draw_line("a")), "a")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    w = DatasetWriter(out)
    w.reject("s0", "x", "broken")
    with pytest.raises(DatasetError, match="no usable samples.*broken"):
        w.close()
    assert list(tmp_path.iterdir()) == []


def test_existing_output_and_overwrite_while_reader_open(tmp_path):
    out = tmp_path / "ds"
    write_dataset(out, ["old"], SplitConfig(val_fraction=0, test_fraction=0))
    with pytest.raises(DatasetError, match="not empty"):
        DatasetWriter(out)
    old_reader = LmdbReader(out / "train")
    assert old_reader.label(0) == "old"
    write_dataset(out, ["new", "newer"], SplitConfig(val_fraction=0, test_fraction=0), overwrite=True)
    assert list(LmdbReader(out / "train").labels()) == ["new", "newer"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_rejected_csv_and_dataset_errors(tmp_path):
    with DatasetWriter(tmp_path / "ds") as w:
        w.add(png_bytes(draw_line("a")), "a")
        w.reject("img, 1.png", 'say "hi"', "bad, really")
        with pytest.raises(DatasetError, match="unknown split"):
            w.add(b"x", "x", split="holdout")
    with open(tmp_path / "ds" / "rejected.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{"sample": "img, 1.png", "label": 'say "hi"', "reason": "bad, really"}]
    assert Dataset(tmp_path / "ds").rejected()[0].reason == "bad, really"
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["rejected"] == 1
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DatasetError, match="no train/val/test"):
        Dataset(tmp_path / "plain")
    with pytest.raises(DatasetError, match="no 'val' split"):
        Dataset(tmp_path / "ds" / "train").reader("val")
    assert Dataset(tmp_path / "ds" / "train").splits == {"all": tmp_path / "ds" / "train"}


def test_split_config_validation():
    with pytest.raises(ConfigError, match="leave something for training"):
        SplitConfig(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        SplitConfig(val_fraction=-0.1)
