"""Audit: counts, characters outside english_g2, histograms, CTC misfits, rejected rows, CLI."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from conftest import draw_line, png_bytes, sample_labels
from ocrtrain.audit import audit_dataset, ctc_length_needed, ctc_steps
from ocrtrain.charset import ENGLISH_G2_CHARS, Charset
from ocrtrain.cli import main
from ocrtrain.dataset import Dataset, DatasetWriter, SplitConfig
from ocrtrain.errors import DatasetError
from ocrtrain.imports import ImportConfig, import_dataset

TINY_LABELS = sample_labels(40)  # what conftest's tiny_dataset holds


def test_tiny_dataset_outside_charset_and_counts(tiny_dataset):
    report = audit_dataset(tiny_dataset)
    expected_chars = Counter("".join(TINY_LABELS))
    assert report.char_counts == dict(expected_chars)
    expected_outside = {c: n for c, n in expected_chars.items() if c not in ENGLISH_G2_CHARS}
    assert report.outside_charset == expected_outside
    assert {"ø", "æ", "å"} <= set(report.outside_charset)
    for c, examples in report.outside_examples.items():
        assert examples and all(c in e and e in TINY_LABELS for e in examples)
    manifest_counts = Dataset(tiny_dataset).manifest["counts"]
    assert report.counts == manifest_counts and report.total == 40
    assert report.empty_splits == []
    assert report.label_lengths == dict(sorted(Counter(map(len, TINY_LABELS)).items()))
    assert sum(report.images_sampled.values()) == 40
    assert sum(report.width["histogram"]["counts"]) == 40
    assert report.height["stats"]["min"] == report.height["stats"]["max"] == 32
    widths = sorted(draw_line(l).size[0] for l in TINY_LABELS)
    assert report.width["stats"]["min"] == widths[0] and report.width["stats"]["max"] == widths[-1]
    assert report.too_long_count == 0 and report.rejected == []
    text = report.summary()
    assert "Outside english_g2" in text and "'ø'" in text and "total 40" in text
    json.dumps(report.to_dict())  # JSON-able


def test_other_base_charsets(tiny_dataset):
    everything = "".join(sorted(set("".join(TINY_LABELS))))
    assert audit_dataset(tiny_dataset, base_charset=everything).outside_charset == {}
    report = audit_dataset(tiny_dataset, base_charset=Charset(everything.replace("ø", "")))
    assert list(report.outside_charset) == ["ø"]


def test_bare_lmdb_and_sampling(tiny_dataset):
    report = audit_dataset(tiny_dataset / "train", max_images=5)
    n = Dataset(tiny_dataset).counts()["train"]
    assert report.counts == {"all": n}
    assert report.images_sampled == {"all": 5}
    assert sum(report.label_lengths.values()) == n


def test_ctc_fit():
    assert ctc_length_needed("abc") == 3
    assert ctc_length_needed("aab") == 4  # a blank must separate the repeated 'a'
    assert ctc_length_needed("1000") == 6
    assert ctc_steps(128, 64) == 31  # 128 px -> 32 columns after two poolings, minus the 2x2 conv
    assert ctc_steps(64, 32) == 31  # resized to height 64 first


def test_too_long_labels_and_empty_splits(tmp_path):
    with DatasetWriter(tmp_path / "ds", SplitConfig(val_fraction=0, test_fraction=0)) as w:
        w.add(png_bytes(draw_line("Ost")), "Ost")
        w.add(png_bytes(draw_line("Ost")), "Ost is much longer than this narrow image")
        w.add(png_bytes(draw_line("Melk 1 l")), "Melk 1 l")
    report = audit_dataset(tmp_path / "ds")
    assert report.too_long_count == 1
    assert report.too_long[0]["label"].startswith("Ost is") and "CTC steps" in report.too_long[0]["reason"]
    assert report.empty_splits == ["val", "test"]
    assert any("empty" in w for w in report.warnings)
    report = audit_dataset(tmp_path / "ds", max_label_length=5)
    assert report.too_long_count == 2
    assert any("max_label_length 5" in t["reason"] for t in report.too_long)
    assert "EMPTY splits: val, test" in report.summary()


def test_rejected_rows_are_reported(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(png_bytes(draw_line("Brød")))
    (src / "b.png").write_bytes(b"")
    (src / "labels.txt").write_text("a.png\tBrød\nb.png\tØl\n", encoding="utf-8")
    out = import_dataset(src, tmp_path / "ds", ImportConfig(split=SplitConfig(val_fraction=0, test_fraction=0)))
    report = audit_dataset(out)
    assert [r["sample"] for r in report.rejected] == ["b.png"]
    assert "empty (0 bytes)" in report.rejected[0]["reason"]
    assert "Rejected at import: 1" in report.summary()


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        audit_dataset(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DatasetError, match="no train/val/test"):
        audit_dataset(tmp_path / "plain")


def test_cli_audit_json(tiny_dataset, capsys):
    assert main(["audit", str(tiny_dataset), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"ø", "æ", "å"} <= set(data["outside_charset"])
    assert data["outside_charset"]["ø"] == Counter("".join(TINY_LABELS))["ø"]
    assert data["total"] == 40 and data["base_charset"] == "english_g2"
    assert main(["audit", str(tiny_dataset), "--base", "english_g2"]) == 0
    assert "Outside english_g2" in capsys.readouterr().out
    assert main(["audit", str(tiny_dataset.parent / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_rare_characters_are_warned_with_the_fix(tmp_path):
    out = tmp_path / "rare"
    with DatasetWriter(out, SplitConfig(val_fraction=0.2, test_fraction=0.0)) as w:
        for i in range(60):
            w.add(png_bytes(draw_line("Melk 12,50")), "Melk 12,50", split="train")
        w.add(png_bytes(draw_line("Crème brûlée")), "Crème brûlée", split="train")
        for _ in range(80):  # plenty of 'ô' outside train does not make it learnable
            w.add(png_bytes(draw_line("Rôti")), "Rôti", split="val")
    report = audit_dataset(out)
    assert report.rare_chars["è"] == report.rare_chars["û"] == 1 and report.rare_chars["ô"] == 0
    assert "M" not in report.rare_chars and "e" not in report.rare_chars and " " not in report.rare_chars
    counts = list(report.rare_chars.values())
    assert counts == sorted(counts)  # rarest first
    warning = next(w for w in report.warnings if "fewer than 50 training examples" in w)
    assert "'è' x1 (new)" in warning and "--rich-in" in warning
    assert "fewer than 50" in report.summary() and report.to_dict()["rare_chars"]["è"] == 1
    assert audit_dataset(out, min_char_count=0).rare_chars == {}


def test_cli_takes_its_defaults_from_the_library():
    import inspect

    import ocrtrain.cli.audit as cli_audit
    from ocrtrain.audit import MAX_IMAGES, MODEL_HEIGHT
    from ocrtrain.cli import build_parser

    args = build_parser().parse_args(["audit", "ds"])
    params = inspect.signature(audit_dataset).parameters
    assert (args.max_images, args.height) == (params["max_images"].default, params["model_height"].default) \
        == (MAX_IMAGES, MODEL_HEIGHT)
    assert inspect.signature(ctc_steps).parameters["model_height"].default == MODEL_HEIGHT
    source = inspect.getsource(cli_audit)  # the numbers are written once, in ocrtrain.audit
    assert "20000" not in source and "default=64" not in source
