"""Imports: each source format, every kind of bad input, safe zips, atomic failure."""
from __future__ import annotations

import csv
import io
import json
import stat
import struct
import tempfile
import uuid
import zipfile
from pathlib import Path

import lmdb
import pytest
from PIL import Image

from conftest import draw_line, png_bytes
from ocrtrain.cli import main
from ocrtrain.dataset import Dataset, DatasetWriter, SplitConfig
from ocrtrain.errors import ConfigError, DatasetError, InputError
from ocrtrain.events import Message, Progress
from ocrtrain.imports import (ImportConfig, detect_format, extract_zip_safely, import_dataset,
                              split_from_name)

ALL_TRAIN = SplitConfig(val_fraction=0.0, test_fraction=0.0)
LABELS = ["Melk 1 l", "Brød 2,50", "Smør \"Tine\"", "Øl 3", "Blåbær 29,90", "Kaffe"]


def all_samples(path: Path) -> dict[str, bytes]:
    """label -> image bytes over every split of a dataset."""
    ds = Dataset(path)
    return {label: img for s in ds.splits for img, label in ds.iter_samples(s)}


def rejected_rows(path: Path) -> list[dict]:
    with open(path / "rejected.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def reason_for(rows: list[dict], sample: str) -> str:
    found = [r["reason"] for r in rows if r["sample"] == sample]
    assert found, f"no rejected row for {sample!r} in {rows}"
    return found[0]


def write_images(folder: Path, labels: list[str], prefix: str = "img") -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, label in enumerate(labels):
        data = png_bytes(draw_line(label))
        (folder / f"{prefix}{i}.png").write_bytes(data)
        out[f"{prefix}{i}.png"] = data
    return out


def labels_folder(folder: Path, labels: list[str] = LABELS) -> dict[str, bytes]:
    images = write_images(folder, labels)
    lines = [f"{name}\t{label}" for name, label in zip(images, labels)]
    (folder / "labels.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return images


def csv_folder(folder: Path, labels: list[str], prefix: str = "img") -> dict[str, bytes]:
    """Images and a labels.csv as EasyOCR's sample data writes it: `name,words`, never quoted."""
    images = write_images(folder, labels, prefix)
    rows = ["filename,words"] + [f"{name},{label}" for name, label in zip(images, labels)]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return images


def no_leftovers(out: Path) -> None:
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


# ---------------------------------------------------------------------------- happy paths


def test_labels_txt_tab_space_bom_crlf_blank_lines(tmp_path):
    src = tmp_path / "src"
    images = write_images(src, LABELS)
    names = list(images)
    lines = [f"{names[0]}\t{LABELS[0]}", "", f"{names[1]} {LABELS[1]}",  # space form, first space splits
             f"{names[2]}\t{LABELS[2]}", "   ", f"{names[3]}\t{LABELS[3]}  ",  # trailing spaces kept
             f"{names[4]} {LABELS[4]}", f"{names[5]}\t{LABELS[5]}"]
    (src / "labels.txt").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    events = []
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN), callback=events.append)
    got = all_samples(out)
    expected_labels = set(LABELS) - {LABELS[3]} | {LABELS[3] + "  "}
    assert set(got) == expected_labels
    # original encoded bytes are stored unchanged
    assert got[LABELS[0]] == images[names[0]] and got[LABELS[1]] == images[names[1]]
    assert rejected_rows(out) == []
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["source"]["parts"][0]["format"] == "labels" and manifest["total"] == 6
    assert any(isinstance(e, Progress) and e.done == e.total == 6 for e in events)
    assert detect_format(src) == "labels"


def test_labels_file_path_and_subfolder_names(tmp_path):
    src = tmp_path / "src"
    images = write_images(src / "crops", LABELS[:3])
    (src / "gt.txt").write_text("".join(f"crops/{n}\t{l}\n" for n, l in zip(images, LABELS[:3])), encoding="utf-8")
    out = import_dataset(src / "gt.txt", tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    assert set(all_samples(out)) == set(LABELS[:3])


def test_easyocr_csv_commas_and_quotes_are_text(tmp_path):
    src = tmp_path / "en_train_filtered"
    labels = ["Smør 2,50", 'Sa "gitt"', "Brød, grovt", "Ost"]
    csv_folder(src, labels)
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    assert set(all_samples(out)) == set(labels)
    assert detect_format(src) == "easyocr"
    # A CSV writer's quotes stay, as in EasyOCR's trainer (split at the first comma, no quoting), with a note.
    with open(src / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["filename", "words"], *zip(sorted(p.name for p in src.glob("*.png")), labels)])
    events = []
    out = import_dataset(src, tmp_path / "ds2", ImportConfig(split=ALL_TRAIN), callback=events.append)
    assert set(all_samples(out)) == {'"Smør 2,50"', '"Sa ""gitt"""', '"Brød, grovt"', "Ost"}
    notes = [e.text for e in events if isinstance(e, Message) and "double quote" in e.text]
    assert len(notes) == 1 and "3 row(s)" in notes[0] and "labels.csv:2" in notes[0]


def test_easyocr_nested_train_val_keep_splits(tmp_path):
    root = tmp_path / "all_data"
    csv_folder(root / "en_train_filtered", LABELS, prefix="t")
    csv_folder(root / "en_val", ["Egg 12", "Løk"], prefix="v")
    cfg = ImportConfig(split=SplitConfig(val_fraction=0.5, test_fraction=0.0))
    out = import_dataset(root, tmp_path / "ds", cfg)
    ds = Dataset(out)
    assert ds.counts() == {"train": 6, "val": 2, "test": 0}  # val comes from en_val, not the fraction
    assert set(ds.reader("val").labels()) == {"Egg 12", "Løk"}
    # test is missing in the source: it is drawn from the train part by test_fraction
    cfg = ImportConfig(split=SplitConfig(val_fraction=0.0, test_fraction=0.5, split_seed=3))
    counts = Dataset(import_dataset(root, tmp_path / "ds2", cfg)).counts()
    assert counts["val"] == 2 and counts["train"] + counts["test"] == 6 and counts["test"] > 0
    # keep_splits off pools everything
    cfg = ImportConfig(split=ALL_TRAIN, keep_splits=False)
    assert Dataset(import_dataset(root, tmp_path / "ds3", cfg)).counts()["train"] == 8


def test_split_names():
    assert split_from_name("en_train_filtered") == "train"
    assert split_from_name("validation") == "val"
    assert split_from_name("evaluation") == "test"
    assert split_from_name("MJ") is None


def test_unnamed_subfolders_are_pooled_with_warning(tmp_path):
    root = tmp_path / "src"
    labels_folder(root / "shopA", LABELS[:3])
    labels_folder(root / "shopB", LABELS[3:])
    events = []
    out = import_dataset(root, tmp_path / "ds", ImportConfig(split=ALL_TRAIN), callback=events.append)
    assert set(all_samples(out)) == set(LABELS)
    assert any(isinstance(e, Message) and "shopA" in e.text for e in events)


def test_jpeg_bytes_kept_bmp_reencoded(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    buf = io.BytesIO()
    draw_line("Ost").save(buf, format="JPEG", quality=90)
    (src / "a.jpg").write_bytes(buf.getvalue())
    draw_line("Egg").save(src / "b.bmp")
    (src / "labels.txt").write_text("a.jpg\tOst\nb.bmp\tEgg\n", encoding="utf-8")
    got = all_samples(import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN)))
    assert got["Ost"] == buf.getvalue()
    assert got["Egg"].startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(got["Egg"])).size == draw_line("Egg").size


def write_raw_dtrb(path: Path, samples: list[tuple[bytes, bytes]]) -> None:
    """A DTRB LMDB written with raw lmdb, as create_lmdb_dataset.py does."""
    env = lmdb.open(str(path), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for i, (img, label) in enumerate(samples, 1):
            txn.put(b"image-%09d" % i, img)
            txn.put(b"label-%09d" % i, label)
        txn.put(b"num-samples", str(len(samples)).encode())
    env.close()


def test_raw_dtrb_lmdb_imported_with_bad_samples_rejected(tmp_path):
    good = [(png_bytes(draw_line(l)), l.encode("utf-8")) for l in LABELS[:4]]
    bad = [(b"\x89PNG\r\n\x1a\n broken", b"Ost"), (png_bytes(draw_line("x")), b"\xff\xfe bad"),
           (png_bytes(draw_line("y")), b"")]
    write_raw_dtrb(tmp_path / "lmdb_src", good + bad)
    assert detect_format(tmp_path / "lmdb_src") == "lmdb"
    out = import_dataset(tmp_path / "lmdb_src", tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    got = all_samples(out)
    assert set(got) == set(LABELS[:4]) and got[LABELS[0]] == good[0][0]
    rows = rejected_rows(out)
    assert "cannot be decoded" in reason_for(rows, "lmdb_src:image-000000005")
    assert "UTF-8" in reason_for(rows, "lmdb_src:image-000000006")
    assert "empty label" in reason_for(rows, "lmdb_src:image-000000007")


def test_our_writer_uses_dtrb_key_layout(tmp_path):
    data = png_bytes(draw_line("Brød"))
    with DatasetWriter(tmp_path / "ds", ALL_TRAIN) as w:
        w.add(data, "Brød")
        w.add(data, "Øl")
    env = lmdb.open(str(tmp_path / "ds" / "train"), readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.get(b"num-samples") == b"2"
        assert txn.get(b"image-000000001") == data
        assert txn.get(b"label-000000001").decode("utf-8") == "Brød"
        assert txn.get(b"label-000000002").decode("utf-8") == "Øl"
    env.close()


def test_dataset_folder_of_split_lmdbs_keeps_splits(tiny_dataset, tmp_path):
    out = import_dataset(tiny_dataset, tmp_path / "copy")
    assert Dataset(out).counts() == Dataset(tiny_dataset).counts()
    for split in ("train", "val", "test"):
        assert list(Dataset(out).reader(split).labels()) == list(Dataset(tiny_dataset).reader(split).labels())


# ---------------------------------------------------------------------------- zips


def test_zip_of_wrapped_folder_with_macos_junk(tmp_path):
    src = tmp_path / "src"
    images = labels_folder(src)
    archive = tmp_path / "receipts.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(src / "labels.txt", "receipts/labels.txt")
        for name in images:
            zf.write(src / name, f"receipts/{name}")
        zf.writestr("__MACOSX/receipts/._img0.png", b"junk")
        zf.writestr("receipts/.DS_Store", b"junk")
    assert detect_format(archive) == "zip"
    out = import_dataset(archive, tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    assert set(all_samples(out)) == set(LABELS)
    assert rejected_rows(out) == []


def test_zip_entries_escaping_target_are_rejected(tmp_path):
    src = tmp_path / "src"
    images = labels_folder(src, LABELS[:3])
    evil = f"evil-{uuid.uuid4().hex}.txt"
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(src / "labels.txt", "labels.txt")
        for name in images:
            zf.write(src / name, name)
        zf.writestr(f"../{evil}", b"owned")
        zf.writestr(f"/tmp/abs-{evil}", b"owned")
        link = zipfile.ZipInfo("link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    out = import_dataset(archive, tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    assert set(all_samples(out)) == set(LABELS[:3])
    rows = rejected_rows(out)
    assert "'..'" in reason_for(rows, f"../{evil}") and "evil.zip" in reason_for(rows, f"../{evil}")
    assert "absolute path" in reason_for(rows, f"/tmp/abs-{evil}")
    assert "symbolic link" in reason_for(rows, "link.png")
    assert not (Path(tempfile.gettempdir()) / evil).exists()
    assert not Path(f"/tmp/abs-{evil}").exists()


def test_zip_bomb_limits(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("labels.txt", "a.png\tx\n")
        zf.writestr("a.png", b"\0" * 5_000_000)
    assert archive.stat().st_size < 50_000
    with pytest.raises(InputError, match="zip bomb"):
        import_dataset(archive, tmp_path / "ds", ImportConfig(max_zip_bytes=1_000_000))
    no_leftovers(tmp_path / "ds")
    with pytest.raises(InputError, match="entries"):
        extract_zip_safely(archive, tmp_path / "x", max_entries=1)


def _patch_size(data: bytearray, signature: bytes, size_at: int, name_len_at: int, name_at: int,
                name: bytes, size: int) -> None:
    i = data.find(signature)
    while i >= 0:
        n = struct.unpack("<H", data[i + name_len_at:i + name_len_at + 2])[0]
        if bytes(data[i + name_at:i + name_at + n]) == name:
            data[i + size_at:i + size_at + 4] = struct.pack("<I", size)
        i = data.find(signature, i + 4)


def test_zip_header_lying_about_size_is_rejected(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("labels.txt", "a.png\tx\n")
        zf.writestr("big.bin", b"\0" * 5_000_000)
    data = bytearray(buf.getvalue())
    # claim 1000 bytes in both the central directory and the local header
    _patch_size(data, b"PK\x01\x02", 24, 28, 46, b"big.bin", 1000)
    _patch_size(data, b"PK\x03\x04", 22, 26, 30, b"big.bin", 1000)
    (tmp_path / "liar.zip").write_bytes(bytes(data))
    rejected = extract_zip_safely(tmp_path / "liar.zip", tmp_path / "x", max_bytes=100_000)
    assert [r.sample for r in rejected] == ["big.bin"] and "cannot be read" in rejected[0].reason
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["labels.txt"]


# ---------------------------------------------------------------------------- bad input


def bomb_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, format="PNG")
    return buf.getvalue()


def test_bad_samples_rejected_good_kept(tmp_path):
    src = tmp_path / "src"
    images = write_images(src, LABELS[:3])
    names = list(images)
    (src / "trunc.png").write_bytes(images[names[0]][:60])
    (src / "zero.png").write_bytes(b"")
    (src / "bomb.png").write_bytes(bomb_png())
    (src / "garbage.png").write_bytes(b"this is not an image at all")
    (src / "tiny.png").write_bytes(png_bytes(Image.new("L", (2, 2), 255)))
    (src / "unlabelled.png").write_bytes(png_bytes(draw_line("Egg")))
    (src / "nolabel.png").write_bytes(png_bytes(draw_line("Egg")))
    (tmp_path / "outside.png").write_bytes(png_bytes(draw_line("Egg")))
    lines = [f"{n}\t{l}".encode() for n, l in zip(names, LABELS[:3])] + [
        b"trunc.png\tOst",
        b"zero.png\tOst",
        b"bomb.png\tOst",
        b"garbage.png\tOst",
        b"tiny.png\tOst",
        b"missing.png\tOst",
        b"nolabel.png\t",
        "latin1.png\tBr\u00f8d".encode("latin-1"),  # line 12: not UTF-8
        b"noseparator.png",
        b"../outside.png\tEgg",
        f"{names[0]}\tagain".encode(),
    ]
    (src / "labels.txt").write_bytes(b"\n".join(lines) + b"\n")
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    assert set(all_samples(out)) == set(LABELS[:3])
    rows = rejected_rows(out)
    assert "trunc.png" in reason_for(rows, "trunc.png") and "labels.txt:4" in reason_for(rows, "trunc.png")
    assert "empty (0 bytes)" in reason_for(rows, "zero.png")
    assert "bomb" in reason_for(rows, "bomb.png") and "bomb.png" in reason_for(rows, "bomb.png")
    assert "cannot be decoded" in reason_for(rows, "garbage.png")
    assert "min_side" in reason_for(rows, "tiny.png")
    assert "does not exist" in reason_for(rows, "missing.png") and "labels.txt:9" in reason_for(rows, "missing.png")
    assert "empty label" in reason_for(rows, "labels.txt:10")
    assert "UTF-8" in reason_for(rows, "labels.txt:11")
    assert [r["label"] for r in rows if r["sample"] == "labels.txt:11"] == ["Br\ufffdd"]
    assert "separator" in reason_for(rows, "labels.txt:12")
    assert "outside the dataset folder" in reason_for(rows, "../outside.png")
    assert "again" in reason_for(rows, names[0]) and "line 1" in reason_for(rows, names[0])
    assert "no line in labels.txt" in reason_for(rows, "unlabelled.png")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["rejected"] == len(rows) == 12  # nolabel.png once (empty label), not also "no line"
    assert [r["sample"] for r in rows].count("nolabel.png") == 0


def test_symlinked_image_pointing_outside_is_rejected(tmp_path):
    src = tmp_path / "src"
    images = labels_folder(src, LABELS[:2])
    (tmp_path / "secret.png").write_bytes(png_bytes(draw_line("Egg")))
    (src / "link.png").symlink_to(tmp_path / "secret.png")
    with open(src / "labels.txt", "a", encoding="utf-8") as fh:
        fh.write("link.png\tEgg\n")
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    assert set(all_samples(out)) == set(LABELS[:2]) and len(images) == 2
    assert "links outside" in reason_for(rejected_rows(out), "link.png")


def test_malformed_csv_rows_rejected(tmp_path):
    src = tmp_path / "src"
    images = write_images(src, LABELS[:3])
    names = list(images)
    (src / "x.png").write_bytes(png_bytes(draw_line("x")))
    (src / "y.png").write_bytes(png_bytes(draw_line("y")))
    body = (b"filename,words\n"
            + f"{names[0]},{LABELS[0]}\n".encode()
            + b"x.png\n"                        # line 3: no comma
            + b"y.png,\"open\n"                 # line 4: quotes are text (as in EasyOCR's trainer)
            + "x.png,Br\u00f8d\n".encode("latin-1")  # line 5
            + b"x.png,\n"                      # line 6
            + b',"no name"\n'                 # line 7
            + f"{names[1]},{LABELS[1]}\n".encode()
            + f"{names[2]},{LABELS[2]}\n".encode())
    (src / "labels.csv").write_bytes(body)
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN))
    assert set(all_samples(out)) == {LABELS[0], LABELS[1], LABELS[2], '"open'}
    rows = rejected_rows(out)
    assert "has no comma" in reason_for(rows, "labels.csv:3")
    assert "UTF-8" in reason_for(rows, "labels.csv:5")
    assert "empty words" in reason_for(rows, "labels.csv:6")
    assert "empty filename" in reason_for(rows, "labels.csv:7")
    # x.png has lines, all rejected: it is not reported a second time as having no line.
    assert not [r for r in rows if r["sample"] == "x.png"]


def test_csv_without_header_is_an_input_error(tmp_path):
    src = tmp_path / "src"
    write_images(src, ["Ost"])
    (src / "labels.csv").write_text("img0.png,Ost\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"labels.csv:1.*filename,words"):
        import_dataset(src, tmp_path / "ds")
    no_leftovers(tmp_path / "ds")


def test_nothing_importable_leaves_nothing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(b"")
    (src / "labels.txt").write_text("a.png\tOst\nb.png\tEgg\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"nothing could be imported.*a\.png"):
        import_dataset(src, tmp_path / "ds")
    no_leftovers(tmp_path / "ds")


def test_failure_midway_leaves_nothing(tmp_path):
    src = tmp_path / "src"
    labels_folder(src, LABELS * 40)  # 240 samples: a progress event comes after 200

    def explode(event):
        if isinstance(event, Progress):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        import_dataset(src, tmp_path / "ds", callback=explode)
    no_leftovers(tmp_path / "ds")


def test_source_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        import_dataset(tmp_path / "nope", tmp_path / "ds")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no labels.txt"):
        import_dataset(empty, tmp_path / "ds")
    src = tmp_path / "src"
    labels_folder(src, LABELS[:2])
    with pytest.raises(InputError, match="holds no labels.csv"):
        import_dataset(src, tmp_path / "ds", ImportConfig(format="easyocr"))
    with pytest.raises(InputError, match="not a zip"):
        import_dataset(src, tmp_path / "ds", ImportConfig(format="zip"))
    csv_folder(src, ["Ost"], prefix="c")
    with pytest.raises(InputError, match="ambiguous"):
        import_dataset(src, tmp_path / "ds")
    no_leftovers(tmp_path / "ds")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "keep.txt").write_text("x")
    with pytest.raises(DatasetError, match="not empty"):
        import_dataset(src, tmp_path / "ds", ImportConfig(format="labels"))


def test_import_config_nested_split_and_errors():
    cfg = ImportConfig.from_dict({"format": "labels", "split": {"val_fraction": 0.2, "split_seed": "7"}})
    assert cfg.split.val_fraction == 0.2 and cfg.split.split_seed == 7
    with pytest.raises(ConfigError, match="did you mean 'format'"):
        ImportConfig.from_dict({"fromat": "labels"})
    with pytest.raises(ConfigError, match="not one of"):
        ImportConfig(format="tar")


def test_cli_import_in_process(tmp_path, capsys):
    src = tmp_path / "src"
    labels_folder(src)
    (src / "zero.png").write_bytes(b"")
    cfg = tmp_path / "import.yaml"
    cfg.write_text("split:\n  val_fraction: 0.5\n  test_fraction: 0.0\n", encoding="utf-8")
    rc = main(["import", str(src), "--out", str(tmp_path / "ds"), "--config", str(cfg),
               "--test-fraction", "0", "--val-fraction", "0", "--split-seed", "5", "--format", "labels"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "imported 6 samples" in out and "1 rejected" in out
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["split"]["split_seed"] == 5 and manifest["counts"]["train"] == 6
    assert manifest["import_config"]["format"] == "labels"
    rc = main(["import", str(tmp_path / "nope"), "--out", str(tmp_path / "ds2")])
    assert rc == 1 and "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------- issue 14: splits, encodings


def split_members(path: Path) -> dict[str, set[str]]:
    ds = Dataset(path)
    return {s: {label for _, label in ds.iter_samples(s)} for s in ds.splits}


def test_small_crop_imports_get_val_and_test_lines_the_same_way_every_time(tmp_path):
    from conftest import sample_labels

    labels = sorted(set(sample_labels(40, seed=5)))[:20]
    src = tmp_path / "src"
    labels_folder(src, labels)
    cfg = ImportConfig(split=SplitConfig(val_fraction=0.1, test_fraction=0.1))
    first = split_members(import_dataset(src, tmp_path / "a", cfg))
    assert len(first["val"]) >= 1 and len(first["test"]) >= 1 and len(first["train"]) >= 16
    assert sum(len(v) for v in first.values()) == 20
    # The same input, listed in another order, splits the same.
    lines = (src / "labels.txt").read_text(encoding="utf-8").splitlines()
    (src / "labels.txt").write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    assert split_members(import_dataset(src, tmp_path / "b", cfg)) == first
    # Another seed is another (still complete) split.
    other = split_members(import_dataset(src, tmp_path / "c", ImportConfig(
        split=SplitConfig(val_fraction=0.1, test_fraction=0.1, split_seed=9))))
    assert other["val"] and other["test"]
    # Three lines: one of each; two lines: both train (a val line would leave one to train on).
    three = tmp_path / "three"
    labels_folder(three, labels[:3])
    assert Dataset(import_dataset(three, tmp_path / "d", cfg)).counts() == {"train": 1, "val": 1, "test": 1}
    two = tmp_path / "two"
    labels_folder(two, labels[:2])
    assert Dataset(import_dataset(two, tmp_path / "e", cfg)).counts() == {"train": 2, "val": 0, "test": 0}
    # Fractions of 0 still mean no such split.
    assert Dataset(import_dataset(src, tmp_path / "f", ImportConfig(split=ALL_TRAIN))).counts()["train"] == 20


def test_cp1252_labels_are_read_as_cp1252_and_say_so(tmp_path):
    from ocrtrain.import_summary import summarize_import

    labels = ["Brød 29,90", "Smør 12,50", "Café crème", "Øl 3 €", "Blåbær", "Kaffe"]
    src = tmp_path / "src"
    images = write_images(src, labels)
    (src / "labels.txt").write_bytes("".join(f"{n}\t{l}\n" for n, l in zip(images, labels)).encode("cp1252"))
    events = []
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=ALL_TRAIN), callback=events.append)
    assert set(all_samples(out)) == set(labels) and rejected_rows(out) == []
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["source"]["encodings"] == {"labels.txt": "cp1252"}
    assert any(isinstance(e, Message) and "not UTF-8" in e.text and "cp1252" in e.text for e in events)
    summary = summarize_import(out)
    assert not summary.mostly_rejected and "labels.txt: cp1252" in summary.text()
    # Forced UTF-8: every non-ASCII row is rejected once, with the encoding reason, and its image
    # is not reported a second time as having no line.
    out = import_dataset(src, tmp_path / "strict", ImportConfig(split=ALL_TRAIN, encoding="utf-8"))
    rows = rejected_rows(out)
    assert len(rows) == 5 and all("not valid UTF-8" in r["reason"] for r in rows)
    summary = summarize_import(out)
    assert summary.mostly_rejected and summary.rejected == 5 and summary.kept == 1
    assert "5 rejected" in summary.text() and "not valid UTF-8" in summary.text()
    # A byte cp1252 leaves undefined (0x81) is not guessed around: the file stays UTF-8.
    (src / "labels.txt").write_bytes(f"{list(images)[0]}\tBr\x81d\n".encode("latin-1")
                                     + "".join(f"{n}\t{l}\n" for n, l in list(zip(images, labels))[1:])
                                     .encode("cp1252"))
    out = import_dataset(src, tmp_path / "undefined", ImportConfig(split=ALL_TRAIN))
    assert json.loads((out / "manifest.json").read_text())["source"]["encodings"] == {"labels.txt": "utf-8"}


def test_a_corrupt_image_is_named_not_shown_as_a_buffer():
    from ocrtrain.images import decode_image

    for data in (b"not an image", png_bytes(draw_line("Ost"))[:70]):
        with pytest.raises(InputError) as exc:
            decode_image(data, "receipt-7.png")
        assert "receipt-7.png" in str(exc.value) and "BytesIO" not in str(exc.value) and "0x" not in str(exc.value)


def test_split_draw_gives_every_split_a_line_from_three_lines_at_any_size():
    from collections import Counter

    from ocrtrain.splits import SplitDraw

    for vf, tf in ((0.1, 0.1), (0.3, 0.3), (0.01, 0.02)):
        for n in (2, 3, 4, 7, 20, 33, 120):
            for seed in range(40):
                draw = SplitDraw(vf, tf, seed)
                placed = [p for i in range(n) for p in draw.place(f"crop{i}.png", i)]
                placed += draw.finish(Counter(s for s, _ in placed))
                counts = Counter(s for s, _ in placed)
                assert sorted(p for _, p in placed) == list(range(n))  # each line once
                if n < 3:
                    assert counts == {"train": n}
                else:
                    assert min(counts["train"], counts["val"], counts["test"]) >= 1, (vf, tf, n, seed, counts)
    # Only the splits asked for are drawn (the source's own val folder stays the only val).
    draw = SplitDraw(0.5, 0.2, 0, splits=("test",))
    placed = [p for i in range(10) for p in draw.place(f"x{i}", i)]
    placed += draw.finish(Counter(s for s, _ in placed))
    assert {s for s, _ in placed} == {"train", "test"}
