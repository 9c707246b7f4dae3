"""Issue 15 (8): a disk that fills while a split is being written, past LmdbWriter's first commit.

LmdbWriter commits every 256 samples, so a split of more than 256 samples writes to the disk in
``add`` (not only at ``close``); neither the disk soak's small datasets nor the other disk-full
tests reach that path. Real small tmpfs mounts (root and mount rights; skipped otherwise).
"""
from __future__ import annotations

import contextlib
import random
import re
from pathlib import Path

import pytest

from test_disk_full_soak_cases import _PROBLEM, PAGE, _used, small_disk

from ocrtrain.cli import main
from ocrtrain.dataset import Dataset, DatasetWriter, SplitConfig
from ocrtrain.diskspace import free_bytes
from ocrtrain.errors import DatasetError
from ocrtrain.lmdb_io import LmdbWriter

pytestmark = pytest.mark.skipif(bool(_PROBLEM), reason=_PROBLEM or "mount works")

BATCH = 256  # LmdbWriter's default commit_every
IMAGE = 6000  # bytes: two LMDB overflow pages a sample, so a commit of 256 is about 2 MiB


def _image(i: int) -> bytes:
    return random.Random(i).randbytes(IMAGE)  # random: nothing on the way compresses it


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _said_free(text: str) -> float:
    """The free space a disk-full message reports, in bytes ("...; 1.2 MiB free on that disk)...")."""
    found = re.search(r"; ([\d.,]+) (bytes|KiB|MiB|GiB) free on that disk", text)
    assert found, text
    return float(found[1].replace(",", "")) * 1024 ** ("bytes", "KiB", "MiB", "GiB").index(found[2])


def _write(out: Path, n: int) -> None:
    """A new dataset `out` of `n` samples, all in its train split."""
    with DatasetWriter(out, SplitConfig(val_fraction=0, test_fraction=0)) as writer:
        for i in range(n):
            writer.add(_image(i), f"Vare {i}", sample=f"s{i}", split="train")


@contextlib.contextmanager
def _failure(out: Path, n: int):
    """Replace `out` by `n` samples until one fails to be added: (its index, the error).

    Not aborted before the checks (add itself must have removed the partial folder); aborted after
    them, so a writer that a broken add left open does not keep the small disk busy."""
    writer = DatasetWriter(out, SplitConfig(val_fraction=0, test_fraction=0), overwrite=True)
    try:
        for i in range(n):
            try:
                writer.add(_image(i), f"Vare {i}", sample=f"s{i}", split="train")
            except DatasetError as exc:
                yield i, exc
                return
        pytest.fail(f"all {n} samples fitted: the disk is too big for the test")
    finally:
        writer.abort()


@pytest.mark.parametrize("batches", [1, 2], ids=["first-commit", "second-commit"])
def test_disk_full_while_adding_keeps_the_earlier_dataset_and_names_the_asked_folder(tmp_path, batches):
    n = 3 * BATCH
    with small_disk(tmp_path / "big", 64 << 20) as disk:
        _write(disk / "ds", 20)
        earlier = _used(disk)
        _write(disk / "full", n)
        per_sample = (_used(disk) - earlier) / n
    # Room for the earlier dataset and the new one's first `batches` - 1 commits and half the next:
    # the commit in the add of sample 256 * batches runs out (after `batches` - 1 commits went to disk).
    room = int(earlier + (batches - 0.5) * BATCH * per_sample) // PAGE * PAGE
    with small_disk(tmp_path / "small", room) as disk:
        _write(disk / "ds", 20)
        before = _snapshot(disk / "ds")
        with _failure(disk / "ds", n) as (added, exc):
            text = str(exc)
            left = sorted(p.name for p in disk.iterdir())
        assert added == batches * BATCH - 1, f"failed at sample {added}, not in the commit of batch {batches}"
        assert text.startswith(f"disk full while writing the dataset {disk / 'ds'} ("), text
        assert ".partial" not in text and text.count(str(disk)) == 1, text
        assert "free space there" in text and "nothing was kept" in text, text
        # The free space it reports is the room left once the partial folder was removed.
        said = _said_free(text)
        assert abs(said - free_bytes(disk)) <= 0.05 * free_bytes(disk), (text, free_bytes(disk))
        assert left == ["ds"], "the partial folder was left behind"
        assert _snapshot(disk / "ds") == before, "the earlier dataset changed"
        assert Dataset(disk / "ds").counts() == {"train": 20, "val": 0, "test": 0}


def test_import_onto_a_disk_that_fills_mid_split_says_so_and_keeps_the_earlier_dataset(tmp_path, capsys,
                                                                                        monkeypatch):
    """The CLI: ``ocrtrain import --overwrite`` of a folder whose train split runs out in its first commit."""
    from PIL import Image

    def source(folder: Path, count: int) -> Path:
        folder.mkdir()
        for i in range(count):
            Image.effect_noise((200, 32), 60 + i % 40).save(folder / f"{i}.png")  # noise: PNGs that do not shrink
        (folder / "labels.txt").write_text("".join(f"{i}.png\tVare {i}\n" for i in range(count)), encoding="utf-8")
        return folder

    small_src, big_src = source(tmp_path / "few", 10), source(tmp_path / "many", 400)  # ~320 train samples
    flushes: list[tuple[bool, str]] = []
    real_flush = LmdbWriter._flush

    def spy(self, final=False):
        try:
            real_flush(self, final)
        except DatasetError as exc:
            flushes.append((final, self.path.name))
            raise exc from None

    monkeypatch.setattr(LmdbWriter, "_flush", spy)
    with small_disk(tmp_path / "big", 64 << 20) as disk:
        assert main(["import", str(small_src), "--out", str(disk / "ds")]) == 0
        earlier = _used(disk)
        assert main(["import", str(big_src), "--out", str(disk / "other")]) == 0
        need = _used(disk) - earlier
    capsys.readouterr()
    with small_disk(tmp_path / "small", (earlier + need // 3) // PAGE * PAGE) as disk:
        assert main(["import", str(small_src), "--out", str(disk / "ds")]) == 0
        before = _snapshot(disk / "ds")
        capsys.readouterr()
        assert main(["import", str(big_src), "--out", str(disk / "ds"), "--overwrite"]) == 1
        err = capsys.readouterr().err
        assert flushes == [(False, "train")], f"did not run out in a commit of the train split: {flushes}"
        assert "disk full while writing the dataset" in err and err.count(str(disk)) == 1, err
        assert str(disk / "ds") in err and ".partial" not in err, err
        assert "free space" in err and "Traceback" not in err, err
        assert sorted(p.name for p in disk.iterdir()) == ["ds"], "the partial folder was left behind"
        assert _snapshot(disk / "ds") == before, "the earlier dataset changed"
