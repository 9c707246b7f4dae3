"""Issue 15, data side: each case that lost data or time, reproduced small and fast.

Overwrite safety (1), disk full (3, 8), 16-bit PNGs (4), truncated LMDBs (7), unbounded
resources (9), tracebacks (10), invisible characters in labels (11), crash-safe replacement
(13), and issue 13 point 3 (labels.csv read as EasyOCR's trainer reads it). Faults are real
where that is cheap (/dev/full, RLIMIT_FSIZE, a truncated file in a child process) and injected
otherwise (a write that raises ENOSPC).
"""
from __future__ import annotations

import builtins
import csv
import errno
import io
import json
import os
import subprocess
import sys
import textwrap
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import lmdb
import numpy as np
import pytest
from PIL import Image

from conftest import draw_line, png_bytes
from ocrtrain.cli import main
from ocrtrain.config import Config
from ocrtrain.dataset import Dataset, DatasetWriter, SplitConfig
from ocrtrain.errors import ConfigError, DatasetError, InputError
from ocrtrain.images import decode_image
from ocrtrain.imports import ImportConfig, extract_zip_safely, import_dataset
from ocrtrain.lmdb_io import LmdbReader

ALL_TRAIN = SplitConfig(val_fraction=0.0, test_fraction=0.0)
ROOT = Path(__file__).resolve().parents[1]


def labels_folder(folder: Path, labels: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, label in enumerate(labels):
        (folder / f"img{i}.png").write_bytes(png_bytes(draw_line(label or "x")))
        lines.append(f"img{i}.png\t{label}")
    (folder / "labels.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def labels_of(path: Path) -> list[str]:
    ds = Dataset(path)
    return sorted(label for s in ds.splits for _, label in ds.iter_samples(s))


def rejected_rows(path: Path) -> list[dict]:
    with open(path / "rejected.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def run_child(code: str, tmp_path: Path, fsize: int = 0) -> subprocess.CompletedProcess:
    """Run `code` in a child Python (a crash there cannot take pytest down); with `fsize`, every
    file write past that many bytes fails as on a full disk (RLIMIT_FSIZE, SIGXFSZ ignored)."""
    prelude = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        if {fsize}:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, {fsize}))
        from ocrtrain.errors import OcrtrainError
        try:
    """)
    body = textwrap.indent(textwrap.dedent(code), "    ")
    epilogue = "\nexcept OcrtrainError as exc:\n    print('error:', exc, file=sys.stderr)\n    sys.exit(1)\n"
    return subprocess.run([sys.executable, "-c", prelude + body + epilogue], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


# ----------------------------------------------------------------- 1. --overwrite safety


def test_import_onto_its_own_source_deletes_nothing(tmp_path, capsys):
    src = labels_folder(tmp_path / "src", ["Melk 1", "Ost 2"])
    before = snapshot(src)
    assert main(["import", str(src), "--out", str(src), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert str(src) in err and "is the source" in err and "outside the source" in err
    assert snapshot(src) == before


def test_out_that_holds_the_source_deletes_nothing(tmp_path, capsys):
    parent = tmp_path / "work"
    src = labels_folder(parent / "scans", ["Melk 1", "Ost 2"])
    (parent / "notes.txt").write_text("mine", encoding="utf-8")
    before = snapshot(parent)
    assert main(["import", str(src), "--out", str(parent), "--overwrite"]) == 1
    assert "holds the source" in capsys.readouterr().err
    assert snapshot(parent) == before
    # ...nor a folder inside the source
    inner = src / "sub"
    inner.mkdir()
    (inner / "keep.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DatasetError, match="lies inside the source"):
        import_dataset(src, inner, ImportConfig(overwrite=True))
    assert (inner / "keep.txt").read_text(encoding="utf-8") == "x"


def test_synth_overwrite_refuses_an_unrelated_folder(tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work", encoding="utf-8")
    assert main(["synth", "--out", str(precious), "--overwrite", "--count", "4", "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert str(precious) in err and "not an ocrtrain dataset" in err and "choose a new folder" in err
    assert (precious / "thesis.txt").read_text(encoding="utf-8") == "years of work"
    assert [p.name for p in tmp_path.iterdir()] == ["precious"]  # no partial left behind


def test_overwrite_still_replaces_a_dataset_or_an_empty_folder(tmp_path):
    src = labels_folder(tmp_path / "src", ["Melk 1", "Ost 2"])
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    labels_folder(tmp_path / "src2", ["Brød 3"])
    import_dataset(tmp_path / "src2", out, ImportConfig(split=ALL_TRAIN, overwrite=True))
    assert labels_of(out) == ["Brød 3"]
    (tmp_path / "empty").mkdir()
    import_dataset(src, tmp_path / "empty", ImportConfig(split=ALL_TRAIN, overwrite=True))
    # a folder whose manifest.json is someone else's is not ours
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text('{"name": "my web app"}', encoding="utf-8")
    with pytest.raises(DatasetError, match="not an ocrtrain dataset"):
        DatasetWriter(other, overwrite=True)
    assert (other / "manifest.json").is_file()


# ----------------------------------------------------------------- 13. crash-safe replacement


@pytest.mark.parametrize("atomic", [True, False], ids=["exchange", "two-renames"])
def test_crash_during_the_swap_loses_nothing(tmp_path, monkeypatch, atomic):
    out = tmp_path / "ds"
    with DatasetWriter(out, ALL_TRAIN) as w:
        w.add(png_bytes(draw_line("old")), "old")
    if not atomic:  # a filesystem without renameat2 RENAME_EXCHANGE
        monkeypatch.setattr("ocrtrain.replace._exchange", lambda a, b: False)
    real_replace = os.replace

    def killed_before_the_new_folder_lands(a, b):
        if Path(b) == out:
            raise KeyboardInterrupt("killed between the renames")
        return real_replace(a, b)

    monkeypatch.setattr(os, "replace", killed_before_the_new_folder_lands)
    w = DatasetWriter(out, ALL_TRAIN, overwrite=True)
    w.add(png_bytes(draw_line("new")), "new")
    try:
        w.close()
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(os, "replace", real_replace)
    # The atomic swap has no gap; after two renames, opening the folder finds the old one again.
    assert labels_of(out) == (["new"] if atomic else ["old"])


def test_leftover_old_folder_of_a_killed_swap_is_restored_on_open(tmp_path):
    out = tmp_path / "ds"
    with DatasetWriter(out, ALL_TRAIN) as w:
        w.add(png_bytes(draw_line("keep")), "keep")
    os.replace(out, tmp_path / f".ds.old-{dead_pid()}")  # the state a kill -9 leaves mid-swap
    assert labels_of(out) == ["keep"]
    assert not list(tmp_path.glob(".ds.old-*"))


# ----------------------------------------------------------------- 3, 8. disk full


def _zip_of(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, p.relative_to(folder).as_posix())
    return archive


def test_disk_full_during_zip_extraction_is_an_error_not_a_rejected_row(tmp_path):
    src = labels_folder(tmp_path / "src", [f"Vare {i}" for i in range(20)])
    (src / "scan.png").write_bytes(os.urandom(30_000))
    _zip_of(src, tmp_path / "a.zip")
    code = """
    from ocrtrain.imports_zip import extract_zip_safely
    rejected = extract_zip_safely("a.zip", "x")
    print("extracted, rejected:", len(rejected))
    """
    done = run_child(code, tmp_path, fsize=20_000)  # scan.png no longer fits
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "disk full while extracting a.zip" in done.stderr and "TMPDIR" in done.stderr


def test_import_of_a_zip_onto_a_full_temp_disk_fails_and_writes_nothing(tmp_path, monkeypatch, capsys):
    src = labels_folder(tmp_path / "src", [f"Vare {i}" for i in range(30)])
    archive = _zip_of(src, tmp_path / "a.zip")
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    real_open = builtins.open
    written = []

    class FullDisk(io.BufferedWriter):
        def write(self, data):
            if len(written) >= 3:  # the disk fills after three files
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    def fake_open(path, mode="r", *args, **kwargs):
        if "w" in mode and "b" in mode and str(path).startswith(str(temp)):
            written.append(path)
            return FullDisk(io.FileIO(path, "w"))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    out = tmp_path / "ds"
    assert main(["import", str(archive), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "disk full" in err and "TMPDIR" in err and "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".ds")]


IMPORT_CODE = """
from ocrtrain.imports import import_dataset
import_dataset("src", "ds")
print("imported")
"""


def test_import_onto_a_full_disk_says_disk_full(tmp_path):
    labels_folder(tmp_path / "src", [f"Vare nummer {i}" for i in range(60)])
    done = run_child(IMPORT_CODE, tmp_path, fsize=40_000)
    assert done.returncode == 1, done.stderr
    assert "disk full" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "ds").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".ds.")]


SYNTH_CODE = """
from ocrtrain.synth import SynthConfig, generate_dataset
generate_dataset(SynthConfig(count=120, workers=1), "ds")
print("wrote")
"""


def test_synth_onto_a_full_disk_says_disk_full(tmp_path):
    done = run_child(SYNTH_CODE, tmp_path, fsize=60_000)
    assert done.returncode == 1, done.stderr
    assert "disk full" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "ds").exists()


# ----------------------------------------------------------------- 4. 16-bit greyscale PNGs


def sixteen_bit_png() -> tuple[bytes, np.ndarray]:
    line = np.asarray(draw_line("Melk 1 l"), dtype=np.uint16) * 257  # 0..65535
    buf = io.BytesIO()
    Image.fromarray(line).save(buf, format="PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode == "I;16"
    return buf.getvalue(), line


def test_sixteen_bit_png_decodes_like_opencv_does():
    import cv2

    data, line = sixteen_bit_png()
    grey = np.asarray(decode_image(data, mode="L"))
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)  # EasyOCR's reader
    assert np.array_equal(grey, expected)
    assert grey.min() == 0 and grey.mean() < 250  # not the all-white page PIL's convert gives
    assert np.asarray(decode_image(data)).dtype == np.uint8


def test_import_stores_sixteen_bit_pngs_as_eight_bit(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    data, _ = sixteen_bit_png()
    (src / "a.png").write_bytes(data)
    (src / "labels.txt").write_text("a.png\tMelk 1 l\n", encoding="utf-8")
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    stored = Image.open(io.BytesIO(Dataset(out).reader("train").image_bytes(0)))
    assert stored.mode == "L" and np.asarray(stored).min() == 0


# ----------------------------------------------------------------- 7. truncated LMDB


def test_truncated_lmdb_is_a_message_not_a_bus_error(tmp_path):
    src = tmp_path / "lmdb"
    from ocrtrain.lmdb_io import LmdbWriter

    with LmdbWriter(src) as w:
        for i in range(40):
            w.add(os.urandom(5000), f"sample {i}")
    data = src / "data.mdb"
    with open(data, "r+b") as fh:
        fh.truncate(data.stat().st_size // 2)
    code = """
    from ocrtrain.lmdb_io import LmdbReader
    r = LmdbReader("lmdb")
    print(len(r), r.label(len(r) - 1))
    """
    done = run_child(code, tmp_path)
    assert done.returncode == 1, (done.returncode, done.stderr)  # was -7 (SIGBUS), shells say 135
    assert "truncated" in done.stderr and str(data.name) in done.stderr and "re-create" in done.stderr
    done = run_child('from ocrtrain.imports import import_dataset\nimport_dataset("lmdb", "ds")', tmp_path)
    assert done.returncode == 1 and "truncated" in done.stderr
    data.write_bytes(b"")
    with pytest.raises(DatasetError, match="cannot be opened as an LMDB"):
        LmdbReader(src)


def test_truncated_dataset_stops_audit_and_train_with_a_message_and_no_run(tiny_dataset, tmp_path):
    import shutil

    ds = shutil.copytree(tiny_dataset, tmp_path / "ds")
    data = ds / "train" / "data.mdb"
    with open(data, "r+b") as fh:
        fh.truncate(data.stat().st_size // 2)
    for argv in (["audit", "ds"], ["train", "--data", "ds", "--run", "run", "--max-steps", "2", "--device", "cpu",
                                   "--replay", "0", "--general-val", "0", "--no-baseline"]):
        done = run_child(f"from ocrtrain.cli import main\nsys.exit(main({argv!r}))", tmp_path)
        assert done.returncode == 1, (argv[0], done.returncode, done.stderr[-1000:])  # was a bus error (135)
        assert "truncated" in done.stderr and "train/data.mdb" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()  # refused before a run folder (and its 'running' status) was made


# ----------------------------------------------------------------- 9. unbounded resources


def dtrb_lmdb(path: Path, n: int, claimed) -> Path:
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i in range(1, n + 1):
            txn.put(b"image-%09d" % i, png_bytes(draw_line(f"Ost {i}")))
            txn.put(b"label-%09d" % i, f"Ost {i}".encode())
        txn.put(b"num-samples", str(claimed).encode())
    env.close()
    return path


def test_lmdb_claiming_millions_of_samples_is_not_walked_sample_by_sample(tmp_path):
    src = dtrb_lmdb(tmp_path / "lying", 10, 3_000_000)
    with pytest.raises(DatasetError, match="claims 3,000,000 samples"):
        LmdbReader(src)  # training on it would fail at sample 11
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    assert len(labels_of(out)) == 10
    rows = rejected_rows(out)
    assert len(rows) == 1 and "claims 3,000,000" in rows[0]["reason"]
    assert (out / "rejected.csv").stat().st_size < 2000


def test_rejected_csv_is_capped_with_a_count(tmp_path, monkeypatch):
    monkeypatch.setattr("ocrtrain.dataset.MAX_REJECTED_ROWS", 5)
    src = labels_folder(tmp_path / "src", ["Ost"])
    with open(src / "labels.txt", "a", encoding="utf-8") as fh:
        fh.writelines(f"missing{i}.png\tx\n" for i in range(40))
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    rows = rejected_rows(out)
    assert len(rows) == 6 and rows[-1]["sample"] == "..." and "35 more" in rows[-1]["reason"]
    assert Dataset(out).manifest["rejected"] == 40


def test_zip_members_are_capped_before_they_are_written(tmp_path, monkeypatch):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("labels.txt", "big.png\tx\nzeros.png\ty\n")
        zf.writestr("big.png", os.urandom(300_000))
        zf.writestr("zeros.png", b"\0" * 30_000_000)  # 30 MB that packs into ~30 KB
    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: opened.append(Path(p).name) or real_open(p, *a, **k))
    target = tmp_path / "x"
    rejected = {r.sample: r.reason for r in extract_zip_safely(archive, target, max_member_bytes=100_000)}
    monkeypatch.setattr(builtins, "open", real_open)
    assert "big.png" not in opened and "zeros.png" not in opened  # refused on the header: never written
    assert "over max_image_bytes" in rejected["big.png"]
    assert "over 200:1" in rejected["zeros.png"]
    assert sorted(p.name for p in target.iterdir()) == ["labels.txt"]
    assert ImportConfig().max_zip_bytes <= 1_000_000_000


def test_extreme_aspect_ratio_image_is_rejected_at_import(tmp_path):
    src = labels_folder(tmp_path / "src", ["Ost"])
    Image.new("L", (900_000, 44), 255).save(src / "wide.png", compress_level=1)
    with open(src / "labels.txt", "a", encoding="utf-8") as fh:
        fh.write("wide.png\tMelk\n")
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    assert labels_of(out) == ["Ost"]
    reason = [r["reason"] for r in rejected_rows(out) if r["sample"] == "wide.png"][0]
    assert "900000x44" in reason and "max_width" in reason and "height of 64" in reason


def test_stale_partial_and_temp_folders_of_dead_processes_are_cleaned(tmp_path, monkeypatch):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    gone = dead_pid()
    stale_partial = tmp_path / f".ds.partial-{gone}"
    stale_temp = temp / f"ocrtrain-import-{gone}-abc"
    live_partial = tmp_path / f".ds.partial-{os.getppid()}"
    for p in (stale_partial, stale_temp, live_partial):
        p.mkdir()
        (p / "junk").write_bytes(b"x" * 100)
    src = labels_folder(tmp_path / "src", ["Ost"])
    import_dataset(_zip_of(src, tmp_path / "a.zip"), tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    assert not stale_partial.exists() and not stale_temp.exists()
    assert live_partial.exists()  # its process still runs: not ours to delete
    assert not list(temp.iterdir())  # this import's own temp folder is gone too


# ----------------------------------------------------------------- 10. tracebacks -> messages


@pytest.mark.parametrize("count", [b"abc", b"-5", b""])
def test_bad_num_samples_is_a_message(tmp_path, count, capsys):
    src = dtrb_lmdb(tmp_path / "bad", 2, count.decode())
    with pytest.raises(DatasetError, match="num-samples"):
        LmdbReader(src)
    assert main(["import", str(src), "--out", str(tmp_path / "ds")]) == 1
    assert "num-samples" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"{not json", b'{"format": "ocrtrain-dataset/1", "x": "\xff"}', b"[1, 2]"])
def test_damaged_manifest_is_a_message(tiny_dataset, tmp_path, content):
    import shutil

    ds = shutil.copytree(tiny_dataset, tmp_path / "ds")
    (ds / "manifest.json").write_bytes(content)
    with pytest.raises(DatasetError, match="manifest.json .*(JSON|UTF-8|object).*delete manifest.json"):
        Dataset(ds)


def test_fuzzed_model_files_are_messages(tmp_path):
    import random

    import torch

    from ocrtrain.checkpoint import read_torch_file
    from ocrtrain.errors import ModelError

    rng = random.Random(15)
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buf)
    good = buf.getvalue()
    files = [b"hello\n", b"}", b"q\x00"]  # text named .pt (a memo lookup of 'e' was a KeyError)
    files += [rng.randbytes(rng.randint(1, 2000)) for _ in range(200)]
    for _ in range(200):
        flipped = bytearray(good)
        for _ in range(rng.randint(1, 20)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        files.append(bytes(flipped))
    files += [good[:rng.randrange(len(good))] for _ in range(50)]
    escaped = []
    for i, content in enumerate(files):
        path = tmp_path / f"f{i}.pt"
        path.write_bytes(content)
        try:
            read_torch_file(path)
        except ModelError as exc:
            assert path.name in str(exc)
        except Exception as exc:  # noqa: BLE001 - what the test looks for
            escaped.append((i, type(exc).__name__, content[:20]))
    assert escaped == []


@pytest.mark.parametrize("record,found", [
    ({"format": "ocrtrain-run/1"}, "lacks 'config' and 'data'"),
    ({"format": "ocrtrain-run/1", "config": {"max_steps": 3}}, "lacks 'data'"),
    ({"format": "ocrtrain-run/1", "config": [3], "data": "ds"}, "has a list for 'config'"),
])
def test_run_config_missing_keys_is_a_message(tmp_path, record, found, capsys):
    from ocrtrain.errors import RunError
    from ocrtrain.runs import Run

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(record), encoding="utf-8")
    (run / "status.json").write_text(json.dumps({"state": "failed"}), encoding="utf-8")
    assert main(["resume", str(run)]) == 1  # was a KeyError traceback
    err = capsys.readouterr().err
    assert found in err and str(run / "config.json") in err and "start a new run" in err
    with pytest.raises(RunError, match=found):
        Run(run).train_config()


@dataclass(frozen=True)
class Numbers(Config):
    max_steps: int = field(default=10, metadata={"help": "steps"})
    seed: int = field(default=0, metadata={"help": "seed"})
    lr: float = field(default=0.1, metadata={"help": "rate"})


@pytest.mark.parametrize("key,value,match", [
    ("max_steps", "1e400", "max_steps must be an integer between"),
    ("max_steps", 1e400, "max_steps must be an integer between"),
    ("seed", "12345678901234567890123", "seed = '12345678901234567890123' is out of range"),
    ("seed", 10 ** 22, "out of range"),
    ("lr", "1e309", "lr must be a finite number"),
    ("lr", "nan", "lr must be a finite number"),
])
def test_numbers_out_of_range_are_config_errors(key, value, match):
    with pytest.raises(ConfigError, match=match):
        Numbers.from_dict({key: value})


def test_big_integers_are_exact():
    assert Numbers.from_dict({"seed": "9007199254740993"}).seed == 9007199254740993  # float would round
    assert Numbers.from_dict({"max_steps": "1e3"}).max_steps == 1000


# ----------------------------------------------------------------- 11. invisible characters in labels


def test_control_bidi_and_zero_width_characters_in_labels(tmp_path):
    labels = ["Melk\x07 1", "abc\u202edef", "Ost\u200b 2", "Br\u00f8d\u00a03", "Bla\u030abær", "\u200b\u2060",
              "l\u200fr", "Egg"]
    src = labels_folder(tmp_path / "src", labels)
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    kept = labels_of(out)
    assert kept == sorted(["Ost 2", "Brød 3", "Blåbær", "Egg"])
    assert all(unicodedata.is_normalized("NFC", s) for s in kept)
    reasons = {r["sample"]: r["reason"] for r in rejected_rows(out)}
    assert "U+0007" in reasons["img0.png"] and "control character" in reasons["img0.png"]
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in reasons["img1.png"] and "reading order" in reasons["img1.png"]
    assert "empty once invisible" in reasons["img5.png"]
    assert "U+200F" in reasons["img6.png"]
    manifest = Dataset(out).manifest
    assert set(manifest["charset"]) <= set("OstBrødlåbæEg0123456789 ")
    assert manifest["labels_normalised"] == 3


# ----------------------------------------------------------------- issue 13.3: labels.csv as EasyOCR reads it

CSV_ROWS = ['"Melk 12,50"', 'Melk 12,50', '"Smør ""Tine"""', '"Tine" ost', 'ost "Tine"', '5" skjerm', ' Ost ',
            'NA', 'x""y', "'q'", '#1 Ost', '1.50', 'a,b,,c', '"open', 'Ost\t', 'null']
#: EasyOCR trainer/dataset.py, OCRDataset.__init__ (the trainer is not in the easyocr wheel).
EASYOCR_TRAINER_READ = dict(sep="^([^,]+),", engine="python", usecols=["filename", "words"], keep_default_na=False)


@pytest.mark.parametrize("header", ["filename,words", "words,filename"])
def test_labels_csv_reads_as_easyocrs_trainer_does(tmp_path, header):
    pandas = pytest.importorskip("pandas")
    src = tmp_path / "src"
    src.mkdir()
    rows = []
    for i, words in enumerate(CSV_ROWS):
        (src / f"{i}.png").write_bytes(png_bytes(draw_line("x")))
        rows.append(f"{i}.png,{words}" if header == "filename,words" else f"{words},{i}.png")
    text = header + "\r\n" + "\r\n".join(rows) + "\r\n\r\n"
    (src / "labels.csv").write_text(text, encoding="utf-8", newline="")
    df = pandas.read_csv(src / "labels.csv", **EASYOCR_TRAINER_READ)
    # The rows whose image the trainer would find (in words,filename order a comma in the words moves
    # it), less a tab inside the words, which label cleaning rejects (test_control_bidi_and_zero_width...).
    expected = {f: w for f, w in zip(df["filename"], df["words"]) if (src / f).is_file() and "\t" not in w}
    if header == "filename,words":
        assert expected["0.png"] == '"Melk 12,50"' and expected["1.png"] == "Melk 12,50" and len(expected) == 16
    messages = []
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN), callback=messages.append)
    assert sorted(Dataset(out).reader("train").labels()) == sorted(expected.values())
    notes = [m.text for m in messages if "begin with a double quote" in getattr(m, "text", "")]
    assert len(notes) == 1 and "kept with their quotes" in notes[0]


def test_decimal_comma_in_unquoted_words_is_kept_whole(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.png", "b.png"):
        (src / name).write_bytes(png_bytes(draw_line("x")))
    (src / "labels.csv").write_text("filename,words\na.png,Melk 12,50\nb.png,Ost\n", encoding="utf-8")
    messages = []
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN), callback=messages.append)
    assert labels_of(out) == ["Melk 12,50", "Ost"]
    assert not [m for m in messages if "quote" in getattr(m, "text", "")]


def test_labels_csv_header_must_be_the_trainers(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(png_bytes(draw_line("x")))
    (src / "labels.csv").write_text("filename,words,source\na.png,Ost,scan 3\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"labels.csv:1.*`filename,words`.*first comma.*no other columns"):
        import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    assert not (tmp_path / "ds").exists()


def test_csv_import_that_keeps_nothing_exits_non_zero(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "labels.csv").write_text("filename,words\nmissing.png,Ost\n", encoding="utf-8")
    assert main(["import", str(src), "--out", str(tmp_path / "ds")]) == 1
    assert "nothing could be imported" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()
