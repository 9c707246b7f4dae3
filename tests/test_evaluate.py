"""ocrtrain.evaluate with the real english_g2 weights on drawn receipt lines, and the `eval` CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import draw_line, png_bytes, sample_labels
from ocrtrain.dataset import DatasetWriter, SplitConfig
from ocrtrain.errors import DatasetError, InputError
from ocrtrain.evaluate import (CompareReport, EvalReport, compare, evaluate, open_split, parity_check,
                               resolve_source, run_folder, run_version)
from ocrtrain.events import Progress
from ocrtrain.lmdb_io import LmdbReader, LmdbWriter
from ocrtrain.metrics import edit_distance

NORDIC = set("æøåÆØÅ")


def _labels(lmdb_path) -> list[str]:
    reader = LmdbReader(lmdb_path)
    try:
        return list(reader.labels())
    finally:
        reader.close()


# ---------------------------------------------------------------- source and data resolution

def test_resolve_source_and_run_folder(tmp_path):
    run = tmp_path / "run-1"
    (run / "checkpoints").mkdir(parents=True)
    assert resolve_source("english_g2") == "english_g2"
    assert resolve_source("easyocr:/x/model") == "easyocr:/x/model"
    assert resolve_source(str(run)) == f"run:{run}"
    assert resolve_source(run) == f"run:{run}"
    with pytest.raises(InputError, match="not a run folder"):
        resolve_source(str(tmp_path))
    assert run_folder(str(run)) == run
    assert run_version(f"run:{run}@last") == (run, "last")
    assert run_version(f"run:{run}@step-00000100") == (run, "step-00000100")
    assert run_version(f"run:{tmp_path}/a@b") == (tmp_path / "a@b", None)
    assert run_folder("english_g2") is None


def test_open_split_prefers_test_then_val(tmp_path, tiny_dataset):
    reader, split = open_split(tiny_dataset)
    n = len(reader)
    reader.close()
    assert split == "test" and n == len(list(_labels(tiny_dataset / "test"))) > 0
    reader, split = open_split(tiny_dataset / "val")
    reader.close()
    assert split == "val"

    no_test = tmp_path / "no-test"
    with DatasetWriter(no_test, SplitConfig(val_fraction=0.5, test_fraction=0.0)) as w:
        for label in sample_labels(6):
            w.add(png_bytes(draw_line(label)), label)
    reader, split = open_split(no_test)
    reader.close()
    assert split == "val" and len(reader) > 0

    only_train = tmp_path / "only-train"
    with DatasetWriter(only_train, SplitConfig(val_fraction=0.0, test_fraction=0.0)) as w:
        w.add(png_bytes(draw_line("Melk")), "Melk")
    with pytest.raises(DatasetError, match="no samples to evaluate"):
        open_split(only_train)
    with pytest.raises(DatasetError):
        open_split(tmp_path / "missing")


# ---------------------------------------------------------------- reports from predictions

class _P:
    """A prediction record (text, confidence) as Predictor returns them."""

    def __init__(self, text, confidence):
        self.text, self.confidence = text, confidence


def test_compare_verdicts_ignore_space_runs_unless_raw():
    labels = ["Melk 12,50", "Ost 3"]
    before = EvalReport.from_predictions("a", "d", "test", labels, [_P("Melk 12,50", .9), _P("Ost  3", .9)])
    after = EvalReport.from_predictions("b", "d", "test", labels, [_P("Melk    12,50", .9), _P("Ost 3", .9)])
    rep = CompareReport.from_reports(before, after)
    assert rep.counts == {"better": 0, "worse": 0, "same": 2} and rep.regressions == []
    assert rep.rows[0]["after_distance_raw"] == 3 and rep.rows[0]["after_distance"] == 0
    assert rep.verdict()["accuracy"] == pytest.approx(0.0) and rep.delta()["accuracy"] == pytest.approx(0.0)
    raw = CompareReport.from_reports(before, after, mode="raw")
    assert raw.counts == {"better": 1, "worse": 1, "same": 0} and raw.regressions[0]["label"] == "Melk 12,50"
    assert raw.verdict()["mode"] == "raw"


def test_compare_verdicts_from_reports(tmp_path):
    labels = ["Brød 12,50", "Melk", "Ost 3"]
    before = EvalReport.from_predictions("a", "d", "test", labels,
                                         [_P("Brod 12,50", .5), _P("Melk", .9), _P("Ost 3", .9)])
    after = EvalReport.from_predictions("b", "d", "test", labels,
                                        [_P("Brød 12,50", .8), _P("Mel", .7), _P("Ost 3", .9)])
    rep = CompareReport.from_reports(before, after)
    assert rep.counts == {"better": 1, "worse": 1, "same": 1}
    assert [r["verdict"] for r in rep.rows] == ["better", "worse", "same"]
    assert rep.regressions[0]["label"] == "Melk" and rep.improvements[0]["index"] == 0
    d = rep.to_dict()
    assert list(d)[:6] == ["kind", "before", "after", "data", "split", "counts"]
    assert d["metrics"]["delta"]["accuracy"] == pytest.approx(0.0)
    assert d["metrics"]["delta"]["cer"] == pytest.approx(0.0)  # one char fixed, one lost
    assert json.loads(json.dumps(d, ensure_ascii=False))["regressions"][0]["after"] == "Mel"
    assert d["verdict"]["mode"] == "ws" and d["verdict"]["accuracy"] == pytest.approx(0.0)
    other = EvalReport.from_predictions("c", "d", "test", labels[:2], [_P("x", 0), _P("y", 0)])
    with pytest.raises(InputError, match="samples differ"):
        CompareReport.from_reports(before, other)


# ---------------------------------------------------------------- english_g2 on drawn receipt lines

@pytest.fixture(scope="module")
def g2():
    from ocrtrain.inference import Predictor

    return Predictor.from_origin("english_g2")


def test_evaluate_english_g2_on_tiny_dataset(tiny_dataset, tmp_path):
    events = []
    report = evaluate("english_g2", tiny_dataset, callback=events.append)
    labels = _labels(tiny_dataset / "test")
    m = report.metrics
    assert report.split == "test" and report.source == "english_g2"
    assert m["n"] == len(report.rows) == len(labels) > 0
    assert [r["label"] for r in report.rows] == labels
    assert [r["index"] for r in report.rows] == list(range(len(labels)))

    # Recompute the metrics from the rows, independently of summarize().
    preds = [r["prediction"] for r in report.rows]
    assert m["accuracy"] == pytest.approx(sum(p == g for p, g in zip(preds, labels)) / len(labels))
    assert m["cer"] == pytest.approx(sum(edit_distance(p, g) for p, g in zip(preds, labels))
                                     / sum(map(len, labels)))
    assert m["mean_confidence"] == pytest.approx(sum(r["confidence"] for r in report.rows) / len(labels))
    for r in report.rows:
        assert r["distance"] == edit_distance(r["prediction"], r["label"])
        assert 0.0 < r["confidence"] <= 1.0

    # english_g2 has no æ/ø/å: those lines are always wrong, and it never emits them.
    nordic_rows = [r for r in report.rows if NORDIC & set(r["label"])]
    assert nordic_rows, "the fixture should contain Norwegian letters"
    assert all(r["prediction"] != r["label"] for r in nordic_rows)
    assert not any(NORDIC & set(p) for p in preds)
    assert m["accuracy"] < 1.0
    # ...but the rest of these clean lines is read well: a moderate CER, not garbage.
    assert 0.0 < m["cer"] < 0.4
    assert m["ned"] < 0.4
    nordic_gold = {c for c in report.confusions["per_char"] if c in NORDIC}
    assert nordic_gold and all(report.confusions["per_char"][c]["error_rate"] == 1.0 for c in nordic_gold)

    # worst: mismatches only, by descending CER
    assert report.worst and all(w["prediction"] != w["label"] for w in report.worst)
    cers = [w["cer"] for w in report.worst]
    assert cers == sorted(cers, reverse=True)

    # progress: starts at 0, ends at n of n
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[0].done == 0 and progress[-1].done == progress[-1].total == m["n"]
    assert all(e.stage == "evaluate" for e in progress)

    # JSON round trip through save()
    path = report.save(tmp_path / "reports" / "eval.json")
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(report.to_dict(), ensure_ascii=False))
    assert saved["metrics"]["n"] == m["n"] and saved["kind"] == "eval"
    assert not list(path.parent.glob(".*.tmp"))


def test_evaluate_with_predictor_and_limit(tiny_dataset, g2):
    report = evaluate(g2, tiny_dataset / "train", limit=3)
    assert report.split == "train" and report.metrics["n"] == 3
    assert [r["label"] for r in report.rows] == _labels(tiny_dataset / "train")[:3]
    with pytest.raises(InputError, match="limit"):
        evaluate(g2, tiny_dataset, limit=-1)
    empty = evaluate(g2, tiny_dataset, limit=0)
    assert empty.metrics["n"] == 0 and empty.metrics["accuracy"] is None and empty.rows == []


def test_compare_same_model_is_all_same(tiny_dataset, g2):
    events = []
    rep = compare(g2, g2, tiny_dataset, callback=events.append)
    n = rep.after.metrics["n"]
    assert n > 0 and rep.counts == {"better": 0, "worse": 0, "same": n}
    assert rep.regressions == [] and rep.improvements == []
    assert all(r["before"] == r["after"] for r in rep.rows)
    assert all(v == pytest.approx(0.0) for v in rep.delta().values())
    assert events[-1].stage == "compare" and events[-1].done == n


def test_parity_with_real_reader(tiny_dataset, tmp_path):
    from ocrtrain.export import export_easyocr

    export_easyocr("english_g2", "g2copy", tmp_path / "bundle")
    # The train split (~28 lines) makes a one-line disagreement visible (> 3 points).
    result = parity_check(tmp_path / "bundle", "g2copy", tiny_dataset / "train", limit=300)
    n = len(_labels(tiny_dataset / "train"))
    assert result["n"] == n
    assert result["diff_points"] == pytest.approx(100 * (result["accuracy_ours"] - result["accuracy_reader"]))
    assert abs(result["diff_points"]) <= 0.5 and result["ok"] is True
    assert 0.0 < result["accuracy_reader"] < 1.0  # Norwegian lines cannot all be right
    assert result["agreement"] >= 0.9
    with pytest.raises(InputError, match="missing"):
        parity_check(tmp_path / "bundle", "nothere", tiny_dataset)


# ---------------------------------------------------------------- CLI

def test_cli_eval_json_saves_into_run_folder(tiny_dataset, tmp_path, capsys, g2):
    from ocrtrain.checkpoint import save_checkpoint
    from ocrtrain.cli import main

    # A run folder whose best checkpoint holds english_g2's weights.
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "best.pt", g2.model, g2.charset, g2.model.config, step=0, metrics={})
    assert main(["eval", str(run), "--data", str(tiny_dataset / "test"), "--json", "--limit", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "eval" and out["metrics"]["n"] == 4 and out["split"] == "test"
    assert out["source"] == f"run:{run}"
    from ocrtrain.runfolder import latest_report

    saved = json.loads(latest_report(run, "eval").read_text(encoding="utf-8"))
    assert saved["metrics"] == out["metrics"]
    assert [r["label"] for r in out["rows"]] == _labels(tiny_dataset / "test")[:4]


def test_cli_eval_human_and_compare(tiny_dataset, tmp_path, capsys):
    from ocrtrain.cli import main

    assert main(["eval", "english_g2", "--data", str(tiny_dataset), "--limit", "4"]) == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "cer" in text and "worst samples" in text and "top confusions" in text
    out = tmp_path / "cmp.json"
    assert main(["eval", "english_g2", "--data", str(tiny_dataset), "--limit", "3",
                 "--compare-with", "english_g2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "0 better, 0 worse, 3 same" in text
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["kind"] == "compare" and saved["counts"]["same"] == 3
    assert main(["eval", "english_g2", "--data", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err
