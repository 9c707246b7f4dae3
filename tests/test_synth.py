"""Synthetic data: fonts, trdg rendering into a dataset folder (parallel, deterministic), CLI."""
from __future__ import annotations

import csv
import json
import shutil
import threading

import pytest
from PIL import Image

from ocrtrain.cli import main
from ocrtrain.dataset import SPLITS, Dataset
from ocrtrain.errors import ConfigError, InputError
from ocrtrain.images import decode_image
from ocrtrain.lmdb_io import LmdbReader
from ocrtrain.synth import (RenderConfig, SynthCanceled, SynthConfig, font_missing_chars,
                            generate_dataset, make_synth_labels, preview, trdg_font_dir)


class StopAfter:
    """A stop event that reads as set from its `n`-th check on (deterministic mid-run cancel)."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


def _samples(path) -> list[tuple[str, bytes, str]]:
    out = []
    for split in SPLITS:
        reader = LmdbReader(path / split)
        out += [(split, *reader[i]) for i in range(len(reader))]
    return out


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'count'"):
        SynthConfig.from_dict({"cont": 3})
    with pytest.raises(ConfigError, match="background 'fog'"):
        RenderConfig(backgrounds=("fog",))
    with pytest.raises(ConfigError, match=r"unknown field \{prise\}"):
        SynthConfig(templates=("{item} {prise}",), template_weights=())
    table = tmp_path / "p.csv"
    table.write_text("name,price\nMelk,2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="set column"):
        SynthConfig(source=str(table))
    assert SynthConfig(source=str(table), column="name").column == "name"


def test_font_check_finds_missing_glyphs_and_small_caps():
    fonts = sorted(trdg_font_dir().glob("*.ttf"))
    missing = {f.name: font_missing_chars(f, "abcæøåABC") for f in fonts}
    assert missing["Roboto-Regular.ttf"] == set()
    assert {"æ", "ø", "å"} <= missing["BEBAS___.ttf"]
    # Small-caps display fonts draw lowercase as small capitals: unusable for lowercase labels.
    for name in ("AmaticSC-Regular.ttf", "AllerDisplay.ttf", "Amatic-Bold.ttf"):
        assert {"a", "b", "c"} <= missing[name], name
        assert not {"A", "B", "C"} & missing[name], name


def test_user_font_lacking_characters_is_named(tmp_path):
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    for name in ("Roboto-Regular.ttf", "BEBAS___.ttf"):
        shutil.copy(trdg_font_dir() / name, fonts / name)
    cfg = SynthConfig(count=6, seed=1, workers=1, render=RenderConfig(fonts=str(fonts)))
    with pytest.raises(InputError, match=r"font BEBAS___.ttf .* cannot draw .*remove the font"):
        preview(cfg, 6)
    (fonts / "BEBAS___.ttf").unlink()
    assert len(preview(cfg, 2)) == 2


def test_preview_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    samples = preview(SynthConfig(count=100, seed=2), 3)
    assert len(samples) == 3 and list(tmp_path.iterdir()) == []
    image, label = samples[0]
    assert image.mode == "L" and image.height == 48 and label == make_synth_labels(SynthConfig(count=100, seed=2))[0]


def test_generate_dataset_contents_and_determinism(tmp_path):
    cfg = SynthConfig(count=24, seed=7, workers=2)
    events = []
    a = generate_dataset(cfg, tmp_path / "a", callback=events.append)
    b = generate_dataset(cfg, tmp_path / "b")
    c = generate_dataset(cfg.replace(workers=1), tmp_path / "c")
    manifest = json.loads((a / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["total"] == 24 and manifest["config"] == cfg.to_dict()
    assert sum(manifest["counts"].values()) == 24 and manifest["counts"]["train"] > 0
    assert manifest["source"]["origin"] == "builtin:no_grocery.txt" and manifest["fonts"]
    samples = _samples(a)
    assert sorted(label for _, _, label in samples) == sorted(make_synth_labels(cfg))
    for _, png, label in samples:
        image = decode_image(png, label)
        assert image.mode == "L" and image.height == 48 and image.width > 20
    # Same config + seed: identical labels, splits and PNG bytes, whatever the number of workers.
    assert samples == _samples(b) == _samples(c)
    assert Dataset(a).manifest["content_hash"] == Dataset(c).manifest["content_hash"]
    other = _samples(generate_dataset(cfg.replace(seed=8), tmp_path / "d"))
    assert [png for _, png, _ in other] != [png for _, png, _ in samples]
    progress = [e for e in events if getattr(e, "stage", None) == "generate"]
    assert progress[0].done == 0 and progress[-1].done == progress[-1].total == 24


def test_sample_no_font_can_draw_is_rejected_and_rest_kept(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("Melk\nBrød\nSnømann ☃\n", encoding="utf-8")
    cfg = SynthConfig(count=30, seed=3, workers=2, source=str(words), templates=("{item}",),
                      template_weights=(), upper_prob=0.0)
    out = generate_dataset(cfg, tmp_path / "ds")
    with open(out / "rejected.csv", newline="", encoding="utf-8") as fh:
        rejected = list(csv.DictReader(fh))
    labels = make_synth_labels(cfg)
    assert len(rejected) == labels.count("Snømann ☃") > 0
    assert all(r["label"] == "Snømann ☃" and "draws '☃'" in r["reason"] for r in rejected)
    kept = [label for _, _, label in _samples(out)]
    assert sorted(kept) == sorted(x for x in labels if "☃" not in x)


def test_cancel_and_failure_leave_no_dataset(tmp_path):
    cfg = SynthConfig(count=40, seed=1, workers=2)
    stop = threading.Event()
    stop.set()
    with pytest.raises(SynthCanceled, match="canceled"):
        generate_dataset(cfg, tmp_path / "x", stop_event=stop)
    with pytest.raises(SynthCanceled, match="canceled after 4 samples"):
        generate_dataset(cfg, tmp_path / "y", stop_event=StopAfter(6))

    def explode(event):
        if getattr(event, "done", 0) > 0:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        generate_dataset(cfg.replace(count=300), tmp_path / "z", callback=explode)
    assert list(tmp_path.iterdir()) == []


def test_cli_synth_with_yaml_base_and_summary(tmp_path, capsys):
    base = tmp_path / "base.yaml"
    base.write_text("count: 12\nseed: 5\nrender:\n  height: 32\nsplit:\n  val_fraction: 0.25\n", encoding="utf-8")
    out = tmp_path / "ds"
    assert main(["synth", "--config", str(base), "--out", str(out), "--seed", "9", "--workers", "2"]) == 0
    for part in ("train", "val", "test", "manifest.json"):
        assert (out / part).exists()
    assert "wrote" in capsys.readouterr().out
    cfg = Dataset(out).manifest["config"]
    assert (cfg["count"], cfg["seed"], cfg["render"]["height"], cfg["split"]["val_fraction"]) == (12, 9, 32, 0.25)
    assert main(["synth", "--out", str(out), "--count", "3"]) == 1  # exists: refused, not overwritten
    assert "already exists" in capsys.readouterr().err


def test_cli_synth_defaults_and_audit(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", "--out", str(out), "--count", "30", "--seed", "1", "--workers", "2"]) == 0
    line = capsys.readouterr().out
    assert "30 samples" in line and "0 rejected" in line
    assert main(["audit", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["outside_charset"], report  # æ/ø/å are not in english_g2


def test_cli_preview_grid(tmp_path, capsys):
    grid = tmp_path / "grid.png"
    assert main(["preview", "--out", str(grid), "-n", "4", "--seed", "2", "--render-height", "32"]) == 0
    image = Image.open(grid)
    assert image.height >= 4 * 32 and list(tmp_path.iterdir()) == [grid]


def test_cli_help_explains_options(capsys):
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    text = capsys.readouterr().out
    for opt in ("--out", "--config", "--count", "--seed", "--source", "--column", "--templates",
                "--template-weights", "--upper-prob", "--workers", "--render-fonts", "--render-height",
                "--render-blur", "--render-skew", "--render-distortion", "--render-backgrounds",
                "--render-text-color", "--split-val-fraction", "--split-split-seed"):
        assert opt in text, opt


# --- every drawn space is a visible gap --------------------------------------------------
# Method: with no skew, blur or noise the line is the ink box of the text scaled to the inner
# height. For each word of the label the font alone says how wide its ink is (getbbox of the
# word at the render size, times that scale); walking the image's column profile from the first
# ink column, the blank run where a word's ink should end must be at least 0.75 of the minimum
# space (MIN_SPACE_EM) wide, and the next word starts where that run ends. A space drawn as
# narrow as a letter gap (Bebas, Amatic before the fix) leaves no such run and fails.

GAP_EM = 0.15  # 0.75 of the 0.2 em minimum space the renderer promises
GAP_FONTS = ("BEBAS___.ttf", "Amatic-Bold.ttf", "Roboto-Regular.ttf", "Lato-BlackItalic.ttf", "OpenSans-Light.ttf")


def _space_gaps(image, label: str, font_path: str, render) -> list[float]:
    """Width of the gap found at each space of `label`, in ems (0 where none is found)."""
    import numpy as np
    from PIL import ImageFont

    font = ImageFont.truetype(font_path, render.height)
    ink = np.asarray(image) < 128
    cols = ink.any(axis=0)
    left, top, right, bottom = font.getbbox(label)
    scale = (render.height - 2 * render.margin) / (bottom - top)
    x = int(np.argmax(cols))
    found = []
    for word in label.split(" ")[:-1]:
        l, _, r, _ = font.getbbox(word)
        end = x + round((r - l) * scale)
        window = range(max(x + 1, end - 3), min(len(cols), end + 4))
        blank = next((c for c in window if not cols[c]), None)
        if blank is None:
            found.append(0.0)
            continue
        stop = blank
        while stop < len(cols) and not cols[stop]:
            stop += 1
        found.append((stop - blank) / scale / font.size)
        x = stop
    return found


def _check_spaces(tmp_path, monkeypatch=None):
    from ocrtrain import synth

    fonts = tmp_path / "fonts"
    fonts.mkdir(exist_ok=True)
    for name in GAP_FONTS:
        shutil.copy(trdg_font_dir() / name, fonts / name)
    words = tmp_path / "words.txt"
    words.write_text("MELK\nIMSDAL\nKOKT SKINKE 100 G\nBROD\nTOALETTPAPIR\nSJOKOLADEPUDDING\n", encoding="utf-8")
    cfg = SynthConfig(count=40, seed=4, source=str(words), upper_prob=1.0,
                      templates=("{qty} {item} {price}", "{item} {price}", "{date} {time}"), template_weights=(),
                      render=RenderConfig(fonts=str(fonts), skew=0, blur=0, backgrounds=("plain",)))
    labels, fonts_used = synth._prepare(cfg)
    samples = preview(cfg, cfg.count)
    assert [label for _, label in samples] == labels
    bad = []
    for (image, label), font in zip(samples, fonts_used):
        gaps = _space_gaps(image, label, font, cfg.render)
        if min(gaps, default=1.0) < GAP_EM:
            bad.append((label, font.rsplit("/", 1)[-1], [round(g, 3) for g in gaps]))
    return bad, {f.rsplit("/", 1)[-1] for f in fonts_used}


def test_every_space_in_a_label_is_a_visible_gap(tmp_path):
    from ocrtrain import synth

    assert synth.MIN_SPACE_EM >= 0.2
    bad, used = _check_spaces(tmp_path)
    assert used == set(GAP_FONTS)
    assert bad == []


def test_space_check_catches_spaces_as_narrow_as_letter_gaps(tmp_path, monkeypatch):
    from ocrtrain import synth

    # The font's own spaces (the drawing before the fix): Bebas and Amatic lines fail the check.
    monkeypatch.setattr(synth, "MIN_SPACE_EM", 0.0)
    bad, _ = _check_spaces(tmp_path)
    assert bad and {font for _, font, _ in bad} <= {"BEBAS___.ttf", "Amatic-Bold.ttf"}


# --- presets and rare characters -----------------------------------------------------------

def test_receipt_printer_preset_is_monospace_degraded_and_reproducible(tmp_path):
    cfg = SynthConfig(count=12, seed=5, render=RenderConfig(preset="receipt-printer"))
    a = generate_dataset(cfg.replace(workers=2), tmp_path / "a")
    b = generate_dataset(cfg.replace(workers=1), tmp_path / "b")
    assert _samples(a) == _samples(b)
    fonts = Dataset(a).manifest["fonts"]
    assert fonts and all(f.startswith(("IBMPlexMono", "RobotoMono", "Inconsolata")) for f in fonts)
    # Same labels, fonts and trdg pixels underneath: only the degradation differs from plain.
    plain = preview(cfg.replace(render=cfg.render.replace(preset="plain", fonts="mono")), 4)
    printed = preview(cfg, 4)
    assert [l for _, l in plain] == [l for _, l in printed]
    assert all(p.tobytes() != q.tobytes() and p.size == q.size for (p, _), (q, _) in zip(plain, printed))
    with pytest.raises(ConfigError, match="preset"):
        RenderConfig(preset="fax")


def test_rich_in_puts_a_rare_character_in_every_line():
    cfg = SynthConfig(count=200, seed=2, rich_in="èîôü")
    labels = make_synth_labels(cfg)
    assert len(labels) == 200 and all(set(label) & set("èîôü") for label in labels)
    for c in "èîôü":
        assert sum(c in label for label in labels) >= 45
    assert labels == make_synth_labels(cfg)
    with pytest.raises(InputError, match=r"needs a template with \{item\}"):
        make_synth_labels(cfg.replace(templates=("{price}",), template_weights=()))


def test_cli_preset_sets_the_render_preset(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "ds"), "--count", "6", "--workers", "1",
                 "--preset", "scanned-page", "--rich-in", "ü"]) == 0
    manifest = Dataset(tmp_path / "ds").manifest
    assert manifest["config"]["render"]["preset"] == "scanned-page" and manifest["config"]["rich_in"] == "ü"
    assert main(["synth", "--out", str(tmp_path / "ds2"), "--count", "4", "--workers", "1", "--preset",
                 "phone-photo", "--render-preset", "plain"]) == 0
    assert Dataset(tmp_path / "ds2").manifest["config"]["render"]["preset"] == "plain"  # the explicit option wins


def test_cli_preview_refuses_the_general_preset(tmp_path, capsys):
    assert main(["preview", "--out", str(tmp_path / "grid.png"), "-n", "2", "--preset", "general"]) == 1
    assert "ocrtrain general --out DIR" in capsys.readouterr().err and not (tmp_path / "grid.png").exists()
