"""The general validation set: reproducible, english_g2's characters only, varied, not receipts."""
from __future__ import annotations

import re

from ocrtrain.charset import ENGLISH_G2_CHARS
from ocrtrain.cli import main
from ocrtrain.dataset import Dataset
from ocrtrain.general import general_lines, generate_general_set
from ocrtrain.lmdb_io import LmdbReader

PRICE_LINE = re.compile(r".* \d{1,3},\d\d$")  # the receipt templates' "{item} {price}"


def test_lines_are_varied_general_text_in_english_g2_characters():
    lines = general_lines(400, seed=0)
    assert lines == general_lines(400, seed=0) and lines != general_lines(400, seed=1)
    assert all(set(line) <= set(ENGLISH_G2_CHARS) for line in lines)
    assert all(line == " ".join(line.split()) for line in lines)  # single spaces, stripped
    joined = "".join(lines)
    assert re.search(r"\d", joined) and re.search(r"[a-z]", joined) and re.search(r"[A-Z]", joined)
    assert len(set(joined) & set(".,:;!?()\"%$#@/-+")) >= 10
    assert sum(line.isupper() for line in lines) > 10 and sum(line.islower() for line in lines) > 40
    assert sum(bool(PRICE_LINE.fullmatch(line)) for line in lines) == 0
    assert len(set(lines)) > 390
    words = {w.strip('.,:;!?()"').lower() for line in lines for w in line.split()}
    assert {"og", "er", "som", "til"} & words or len(words) > 800  # Norwegian words are in the mix


def test_set_is_reproducible_val_test_only(tmp_path):
    a = generate_general_set(tmp_path / "a", count=16, seed=3, workers=2)
    b = generate_general_set(tmp_path / "b", count=16, seed=3, workers=1)
    c = generate_general_set(tmp_path / "c", count=16, seed=4, workers=1)
    ma, mb, mc = (Dataset(p).manifest for p in (a, b, c))
    assert ma["content_hash"] == mb["content_hash"] != mc["content_hash"]
    assert ma["counts"] == {"train": 0, "val": 8, "test": 8}
    assert ma["source"]["kind"] == "general" and ma["source"]["seed"] == 3
    assert all(not f.startswith(("BEBAS", "Amatic", "Capture", "FFF", "Pacifico")) for f in ma["fonts"])
    labels = []
    for split in ("val", "test"):
        reader = LmdbReader(a / split)
        labels += list(reader.labels())
        reader.close()
    assert sorted(labels) == sorted(general_lines(16, seed=3))


def test_cli_general_and_synth_preset_general(tmp_path, capsys):
    assert main(["general", "--out", str(tmp_path / "g"), "--count", "8", "--seed", "5", "--workers", "1"]) == 0
    first = capsys.readouterr().out
    assert main(["synth", "--preset", "general", "--out", str(tmp_path / "s"), "--count", "8", "--seed", "5",
                 "--workers", "1"]) == 0
    second = capsys.readouterr().out
    assert "content hash" in first and first.split("content hash")[1] == second.split("content hash")[1]


def test_cli_takes_the_count_default_from_the_library(monkeypatch):
    import inspect

    import ocrtrain.cli.general as cli_general
    import ocrtrain.cli.synth as cli_synth
    from ocrtrain.cli import build_parser
    from ocrtrain.general import GENERAL_COUNT, general_config

    assert build_parser().parse_args(["general", "--out", "g"]).count == GENERAL_COUNT
    for fn in (generate_general_set, general_config):
        assert inspect.signature(fn).parameters["count"].default == GENERAL_COUNT
    seen = []
    monkeypatch.setattr(cli_general, "write_general", lambda out, count, *rest: seen.append(count) or 0)
    assert main(["synth", "--preset", "general", "--out", "s"]) == 0 and seen == [GENERAL_COUNT]
    for module in (cli_general, cli_synth):  # the number is written once, in ocrtrain.general
        assert "1000" not in inspect.getsource(module)
