"""Synthetic data: corpus, templates, trdg rendering into a dataset folder, CLI."""
from __future__ import annotations

import json
import random
import re
import threading

import pytest

from ocrtrain.cli import main
from ocrtrain.corpus import load_builtin, load_csv_column, load_wordlist
from ocrtrain.dataset import Dataset
from ocrtrain.errors import ConfigError, InputError, OcrtrainError
from ocrtrain.lmdb_io import LmdbReader
from ocrtrain.synth import (RenderConfig, SynthConfig, font_missing_chars, generate_dataset,
                            make_synth_labels, preview, trdg_font_dir)
from ocrtrain.templates import check_template, make_labels, make_price


def test_builtin_corpus_is_norwegian_with_special_letters():
    entries = load_builtin()
    assert len(entries) >= 300
    text = "".join(entries)
    assert {"æ", "ø", "å"} <= set(text)


def test_price_rule():
    rng = random.Random(3)
    prices = [make_price(rng) for _ in range(4000)]
    assert all(re.fullmatch(r"\d{1,3},\d\d", p) for p in prices)
    big = sum(int(p.split(",")[0]) >= 100 for p in prices) / len(prices)
    assert 0.07 < big < 0.13


def test_labels_are_deterministic_and_templates_checked():
    a = make_labels(50, ["{item}    {price}", "{date}"], [1, 1], ["Melk", "Brød"], seed=5)
    assert a == make_labels(50, ["{item}    {price}", "{date}"], [1, 1], ["Melk", "Brød"], seed=5)
    assert a != make_labels(50, ["{item}    {price}", "{date}"], [1, 1], ["Melk", "Brød"], seed=6)
    with pytest.raises(ConfigError, match=r"unknown field \{prise\}.*\{price\}"):
        check_template("{item} {prise}")
    upper = make_labels(200, ["{item}"], [1], ["Brød"], seed=1, upper_prob=0.5)
    assert "BRØD" in upper and "Brød" in upper


def test_wordlist_and_csv_sources(tmp_path):
    wl = tmp_path / "words.txt"
    wl.write_bytes("\ufeffMelk\n\n# comment\nSmør\n".encode("utf-8"))
    assert load_wordlist(wl).entries == ("Melk", "Smør")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Melk\nSm\xf8r\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1.txt:2 is not UTF-8"):
        load_wordlist(bad)
    csv = tmp_path / "products.tsv"
    csv.write_text("code\tproduct_name\tbrand\n1\tBlåbær\tX\n2\tbroken\trow\ttoo\tmany\n3\tGulost\tY\n",
                   encoding="utf-8")
    src = load_csv_column(csv, "product_name")
    assert src.entries == ("Blåbær", "Gulost") and len(src.skipped) == 1
    with pytest.raises(InputError, match=r"no column 'name'.*product_name"):
        load_csv_column(csv, "name")


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'count'"):
        SynthConfig.from_dict({"cont": 3})
    with pytest.raises(ConfigError, match="background 'fog'"):
        RenderConfig(backgrounds=("fog",))
    csv = tmp_path / "p.csv"
    csv.write_text("name,price\nMelk,2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="set column"):
        SynthConfig(source=str(csv))
    assert SynthConfig(source=str(csv), column="name").column == "name"


def test_font_check_finds_missing_glyphs():
    fonts = sorted(trdg_font_dir().glob("*.ttf"))
    missing = {f.name: font_missing_chars(f, "abcæøåABC") for f in fonts}
    assert missing["Roboto-Regular.ttf"] == set()
    assert any(m for m in missing.values()), "some trdg display fonts lack æ/ø/å or lowercase"


def test_preview_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    samples = preview(SynthConfig(count=100, seed=2), 3)
    assert len(samples) == 3 and list(tmp_path.iterdir()) == []
    image, label = samples[0]
    assert image.mode == "L" and image.height == 48 and label == make_synth_labels(SynthConfig(count=100, seed=2))[0]


def test_generate_is_deterministic_and_split(tmp_path):
    cfg = SynthConfig(count=24, seed=7, workers=2)
    a = generate_dataset(cfg, tmp_path / "a")
    b = generate_dataset(cfg.replace(workers=1), tmp_path / "b")
    da, db = Dataset(a), Dataset(b)
    assert sum(da.manifest["counts"].values()) == 24
    assert da.manifest["content_hash"] == db.manifest["content_hash"]
    labels = make_synth_labels(cfg)
    got = [l for s in ("train", "val", "test") for l in LmdbReader(a / s).labels()]
    assert sorted(got) == sorted(labels)
    assert json.loads((a / "manifest.json").read_text())["config"]["seed"] == 7


def test_cancel_leaves_no_dataset(tmp_path):
    stop = threading.Event()
    stop.set()
    with pytest.raises(OcrtrainError, match="canceled"):
        generate_dataset(SynthConfig(count=40, seed=1, workers=2), tmp_path / "x", stop_event=stop)
    assert list(tmp_path.iterdir()) == []


def test_cli_synth_and_audit(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", "--out", str(out), "--count", "30", "--seed", "1", "--workers", "2"]) == 0
    for part in ("train", "val", "test", "manifest.json"):
        assert (out / part).exists()
    capsys.readouterr()
    assert main(["audit", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["outside_charset"], report


def test_cli_help_explains_options(capsys):
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    text = capsys.readouterr().out
    for opt in ("--count", "--seed", "--render-height", "--render-backgrounds", "--split-val-fraction", "--templates"):
        assert opt in text
