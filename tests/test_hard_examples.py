"""Hard examples: a run's misread characters become a rich_in synthetic dataset (real trdg)."""
import json

from conftest import draw_line, png_bytes
from ocrtrain.cli import main
from ocrtrain.dataset import Dataset, DatasetWriter, SplitConfig
from ocrtrain.hard_examples import hard_characters
from ocrtrain.metrics import char_confusions


def test_hardest_characters_rank_by_errors_and_skip_spaces():
    conf = char_confusions(["Brod 1O", "Brod  2", "Ost"], ["Brød 10", "Brød 2", "Øst"])
    # ø: 2 errors; 0 and Ø: 1 each (equal rate 1.0, then character order); the doubled space is no character
    assert hard_characters(conf, top=3, min_errors=1) == ["ø", "0", "Ø"]
    assert hard_characters(conf, top=3, min_errors=2) == ["ø"]
    assert hard_characters(conf, top=5, min_errors=3) == []


def test_cli_generates_lines_rich_in_what_english_g2_misreads(tmp_path, capsys):
    # english_g2 has no æ/ø/å: every one of them is misread, so they must be the hard characters.
    data = tmp_path / "nordic"
    labels = ["Brød 12,90", "Smør 39,90", "Blåbær 24,50", "Ørret 89,00", "Rømme 19,90", "Gulrøtter 14,90"]
    with DatasetWriter(data, SplitConfig(val_fraction=0.0, test_fraction=0.0)) as w:
        for i, label in enumerate(labels * 2):
            w.add(png_bytes(draw_line(label)), label, split="val" if i < 6 else "train")
    out = tmp_path / "hard"
    code = main(["hard-examples", "english_g2", "--data", str(data), "--out", str(out), "--count", "12",
                 "--top", "2", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["chars"]) <= set("øæå") and "ø" in summary["chars"]
    ds = Dataset(out)
    assert ds.manifest["total"] == 12
    got = [ds.reader(s)[i][1] for s in ds.splits for i in range(len(ds.reader(s)))]
    assert all(set(label) & set(summary["chars"]) for label in got)  # every line carries one
    assert main(["hard-examples", "english_g2", "--out", str(tmp_path / "x")]) == 1
    assert "pass --data" in capsys.readouterr().err


def test_cli_takes_its_defaults_from_the_config_and_refuses_a_zero(tmp_path, capsys):
    from ocrtrain.cli import build_parser
    from ocrtrain.config import config_from_args
    from ocrtrain.hard_examples import HardExamplesConfig

    args = build_parser().parse_args(["hard-examples", "english_g2", "--out", str(tmp_path / "x")])
    assert config_from_args(HardExamplesConfig, args) == HardExamplesConfig()  # one home for the defaults
    args = build_parser().parse_args(["hard-examples", "english_g2", "--out", "x", "--min-errors", "3", "--seed", "5"])
    assert config_from_args(HardExamplesConfig, args) == HardExamplesConfig(min_errors=3, seed=5)
    assert main(["hard-examples", "english_g2", "--out", str(tmp_path / "x"), "--top", "0"]) == 1
    assert "top must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
