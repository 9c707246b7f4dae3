"""The run-folder format: records, the status lock, the row follower, checkpoints, reports."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from ocrtrain import fsutil, runfolder as rf
from ocrtrain.errors import RunError


def _config(max_steps=10):
    return {"format": "ocrtrain-run/1", "config": {"max_steps": max_steps}, "data": "/d", "origin": "english_g2"}


def test_records_round_trip_and_keep_unknown_keys():
    st = {"state": "running", "step": 4, "max_steps": 10, "pid": 12, "best_cer": 0.25, "gpu": "A100"}
    rec = rf.RunStatus.from_dict(st)
    assert (rec.state, rec.step, rec.best_cer, rec.extra) == ("running", 4, 0.25, {"gpu": "A100"})
    assert {k: v for k, v in rec.to_dict().items() if k in st} == st
    assert rf.RunStatus.from_dict({}).state == "created" and rf.RunStatus.from_dict({"step": None}).step == 0

    train = {"kind": "train", "step": 3, "epoch": 0.5, "train_loss": 1.5, "lr": 1e-4, "new_thing": 7}
    row = rf.row_from_dict(train)
    assert isinstance(row, rf.TrainRow) and row.train_loss == 1.5 and row.extra == {"new_thing": 7}
    assert {k: v for k, v in row.to_dict().items() if k in train} == train

    val = {"kind": "val", "step": 4, "epoch": 1.0, "cer": 0.1, "accuracy": 0.8, "is_best": True}
    vrow = rf.row_from_dict(val)
    assert isinstance(vrow, rf.ValRow) and vrow.val_set == "val" and vrow.metrics["cer"] == 0.1
    assert vrow.to_dict() == {**val, "val_set": "val"}
    real = rf.ValRow(step=4, val_set="real", metrics={"cer": 0.3})
    assert rf.row_from_dict(real.to_dict()) == real
    assert isinstance(rf.row_from_dict({"step": 1, "cer": 0.2}), rf.ValRow)  # rows of old runs had no kind

    versions = {"versions": [{"step": 2, "file": "step-00000002.pt", "metrics": {"cer": 0.5}}],
                "best": "step-00000002.pt", "last": "last.pt", "note": "x"}
    v = rf.Versions.from_dict(versions)
    assert v.best_version().step == 2 and v.to_dict() == versions


def test_create_run_refuses_a_folder_holding_a_run(tmp_path):
    run = rf.create_run(tmp_path / "r", _config(max_steps=7))
    st = rf.read_status(run)
    assert st.state == "created" and st.max_steps == 7 and rf.read_config(run)["data"] == "/d"
    assert rf.is_run_folder(run) and rf.files(run).checkpoints.is_dir() and rf.files(run).reports.is_dir()
    rf.create_run(run, _config())  # still only created: may be prepared again
    rf.update_status(run, state="running")
    with pytest.raises(RunError, match="already holds a run.*ocrtrain resume"):
        rf.create_run(run, _config())
    assert not rf.is_run_folder(tmp_path / "nothing") and not rf.is_run_folder(tmp_path)
    with pytest.raises(RunError, match="is not a run folder.*ocrtrain runs"):
        rf.require_run_folder(tmp_path)
    with pytest.raises(RunError, match="does not exist"):
        rf.require_run_folder(tmp_path / "nothing")
    with pytest.raises(RunError, match="has no config.json"):
        rf.read_config(tmp_path)
    (run / "status.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(RunError, match="not valid JSON"):
        rf.read_status(run)


def test_update_status_from_two_threads_loses_no_update(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    n = 60

    # Increments under the status lock, interleaved with update_status from two more threads: if
    # update_status skipped the lock it would write back a stale count (or lose a or b).
    def increment():
        for _ in range(n):
            with fsutil.file_lock(run / ".status.lock"):
                data = rf.read_status(run).extra.get("count", 0)
                fsutil.write_json_atomic(run / "status.json", {**rf.read_status(run).to_dict(), "count": data + 1})

    def writer(key):
        for i in range(n):
            rf.update_status(run, **{key: i})

    threads = [threading.Thread(target=increment) for _ in range(2)]
    threads += [threading.Thread(target=writer, args=(k,)) for k in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    st = rf.read_status(run)
    assert st.extra["count"] == 2 * n
    assert st.extra["a"] == st.extra["b"] == n - 1
    skipped = rf.update_status(run, only_if=lambda s: s.state == "running", state="canceled")
    assert skipped.state == "created" and rf.read_status(run).state == "created"


def test_follower_waits_for_a_half_written_line_and_restarts_on_truncation(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    follower = rf.RowFollower(run)
    assert follower.poll() == []
    rf.append_rows(run, [rf.TrainRow(step=1, train_loss=2.0), rf.TrainRow(step=2, train_loss=1.5)])
    assert [r.step for r in follower.poll()] == [1, 2]
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as fh:
        line = json.dumps(rf.ValRow(step=2, metrics={"cer": 0.4}).to_dict())
        fh.write(line[:10])
        fh.flush()
        assert follower.poll() == []  # half a line: next time
        fh.write(line[10:] + "\n")
    [row] = follower.poll()
    assert isinstance(row, rf.ValRow) and row.metrics["cer"] == 0.4
    assert follower.poll() == []
    rf.append_rows(run, [rf.TrainRow(step=3), rf.ValRow(step=3, val_set="real", metrics={"cer": 0.2})])
    assert rf.truncate_rows_after(run, 2) == 3
    assert [(r.kind, r.step) for r in rf.read_rows(run)] == [("train", 1), ("train", 2), ("val", 2)]
    assert [r.step for r in follower.poll()] == [1, 2, 2] and follower.restarted  # file shrank: from the start
    assert [r.val_set for r in rf.read_rows(run, kind="val")] == ["val"]


def test_resolve_checkpoint_names_what_exists(tmp_path):
    run = rf.create_run(tmp_path / "r", _config())
    with pytest.raises(RunError, match="no checkpoint yet"):
        rf.resolve_checkpoint(run, "best")
    for name in ("best.pt", "last.pt", "step-00000004.pt"):
        (rf.files(run).checkpoints / name).write_bytes(b"x")
    assert rf.resolve_checkpoint(run).name == "best.pt"
    assert rf.resolve_checkpoint(run, "last").name == "last.pt"
    assert rf.resolve_checkpoint(run, 4) == rf.resolve_checkpoint(run, "step-4") == rf.resolve_checkpoint(run, "4")
    assert rf.resolve_checkpoint(run, "step-00000004.pt").name == "step-00000004.pt"
    with pytest.raises(RunError, match=r"step-00000009\.pt does not exist \(available: best\.pt, last\.pt, step"):
        rf.resolve_checkpoint(run, "step-9")
    with pytest.raises(RunError, match="run folder .*missing does not exist"):
        rf.resolve_checkpoint(tmp_path / "missing")


def test_latest_report_goes_by_time_not_by_name(tmp_path):
    run = rf.create_run(tmp_path / "r", _config())
    assert rf.latest_report(run, "compare") is None
    first = rf.new_report_path(run, "compare")
    fsutil.write_json_atomic(first, {"n": 1})
    # A legacy CLI report written earlier, whose name sorts after the stamped ones.
    legacy = rf.files(run).reports / "compare-test.json"
    fsutil.write_json_atomic(legacy, {"n": 0})
    old = time.time() - 3600
    os.utime(legacy, (old, old))
    assert sorted(p.name for p in rf.files(run).reports.iterdir())[-1] == "compare-test.json"
    assert rf.latest_report(run, "compare") == first
    second = rf.new_report_path(run, "compare")
    assert second != first
    fsutil.write_json_atomic(second, {"n": 2})
    assert rf.latest_report(run, "compare") == second
    # A legacy file newer than every stamped one wins (its mtime is its time).
    notebook = rf.files(run).reports / "compare.json"
    fsutil.write_json_atomic(notebook, {"n": 3})
    os.utime(notebook, (time.time() + 60, time.time() + 60))
    assert rf.latest_report(run, "compare") == notebook
    # Other kinds do not count, even when their name starts the same way.
    fsutil.write_json_atomic(rf.new_report_path(run, "compare-extra"), {})
    assert rf.latest_report(run, "compare") == notebook
    assert [p.name for _t, p in rf.list_reports(run, "parity")] == []
    with pytest.raises(RunError, match="report kind"):
        rf.new_report_path(run, "../x")


def test_log_cancel_and_rejected(tmp_path):
    run = rf.create_run(tmp_path / "r", _config())
    assert rf.log_tail(run) == ""
    for i in range(50):
        rf.log_append(run, f"line {i}")
    tail = rf.log_tail(run, lines=3).splitlines()
    assert len(tail) == 3 and tail[-1].endswith("INFO    line 49")
    assert not rf.cancel_requested(run)
    rf.request_cancel(run)
    assert rf.cancel_requested(run)
    rf.clear_cancel(run)
    assert not rf.cancel_requested(run)
    rows = [{"split": "train", "index": "3", "label": "Straße", "reason": "charset"}]
    rf.write_rejected(run, rows)
    assert rf.read_rejected(run) == rows and rf.read_rejected(tmp_path) == []


def test_fsutil_times_and_durations():
    assert fsutil.format_duration(0) == "0s" and fsutil.format_duration(61.4) == "1m01s"
    assert fsutil.format_duration(3 * 3600 + 5) == "3h00m05s"
    assert fsutil.format_duration(float("nan"), missing="") == "" and fsutil.format_duration(-1) == "?"
    assert fsutil.format_duration(0.349, precise=True) == "0.35s" and fsutil.format_duration(4.24, precise=True) == "4.2s"
    assert fsutil.format_duration(75.4, precise=True) == "1m15s" and fsutil.format_duration(None, precise=True) == "?"
    now = time.time()
    assert abs(fsutil.parse_time(fsutil.now_iso()) - now) < 2
    assert abs(fsutil.parse_time(fsutil.utc_stamp(now)) - now) < 0.01
    assert fsutil.parse_time("2026-01-02T03:04:05Z") == fsutil.parse_time("2026-01-02T04:04:05+0100")
    assert fsutil.parse_time("") is None and fsutil.parse_time("soon") is None and fsutil.parse_time(5) == 5.0
