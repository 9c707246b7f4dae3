"""Issue 15, training side: disk full (8), stale temporary files (9), config edits at resume and
the machine-wide device queue (12), reproduced small and fast.

Faults are real where that is cheap (RLIMIT_FSIZE in a child process: the kernel refuses the
write as on a full disk) and injected otherwise (fsync of one temporary file raises ENOSPC, as
delayed allocation reports a full disk).
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ocrtrain import jobs, runfolder
from ocrtrain.errors import DiskFullError, RunError
from ocrtrain.events import Message
from ocrtrain.fsutil import copy_atomic, write_atomic, write_text_atomic
from ocrtrain.runs import Run, resume
from ocrtrain.train import TrainConfig, TrainStep, fit

ROOT = Path(__file__).resolve().parents[1]
# A few CPU steps: frozen VGG, no general set, no step-0 validation.
FAST = dict(max_steps=4, val_interval=2, batch_size=4, val_limit=4, workers=0, warmup_steps=1,
            freeze_feature_extractor=True, general_val=0, baseline=False, device="cpu")
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="finds a file's name by /proc")


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


def run_child(code: str, cwd: Path, fsize: int) -> subprocess.CompletedProcess:
    """`code` in a child Python where every write past `fsize` bytes fails (RLIMIT_FSIZE, EFBIG)."""
    prelude = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, {fsize}))
        from ocrtrain.errors import OcrtrainError
        try:
    """)
    body = textwrap.indent(textwrap.dedent(code), "    ")
    epilogue = "\nexcept OcrtrainError as exc:\n    print('error:', exc, file=sys.stderr)\n    sys.exit(1)\n"
    return subprocess.run([sys.executable, "-c", prelude + body + epilogue], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


class FullDisk:
    """fsync of a temporary file whose name contains `pattern` raises ENOSPC once `on` is set."""

    def __init__(self, monkeypatch, pattern: str, on: bool = True):
        self.pattern, self.on, self.hits = pattern, on, 0
        real = os.fsync

        def fsync(fd):
            name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
            if self.on and self.pattern in name and name.endswith(".tmp"):
                self.hits += 1
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd)

        monkeypatch.setattr(os, "fsync", fsync)


# ----------------------------------------------------------------- 8. disk full in the write helpers

def test_full_disk_mid_write_keeps_the_old_file_and_says_disk_full(tmp_path):
    target = write_text_atomic(tmp_path / "versions.json", '{"old": true}')

    def half_then_full(fh):
        fh.write(b'{"new"')
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError) as info:
        write_atomic(target, half_then_full)
    text = str(info.value)
    assert text.startswith(f"disk full while writing {target}") and "free space" in text
    assert "another disk" in text and "previous versions.json is unchanged" in text
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert target.read_text() == '{"old": true}' and temp_files(tmp_path) == []
    with pytest.raises(DiskFullError, match="nothing was written"):
        write_atomic(tmp_path / "new.json", half_then_full)
    with pytest.raises(ValueError):  # other errors stay what they are
        write_atomic(target, lambda fh: (_ for _ in ()).throw(ValueError("bug")))
    assert temp_files(tmp_path) == []


@needs_proc
def test_copy_onto_a_full_disk_says_disk_full(tmp_path, monkeypatch):
    src = write_text_atomic(tmp_path / "step-1.pt", "new weights")
    best = write_text_atomic(tmp_path / "best.pt", "old weights")
    FullDisk(monkeypatch, "best.pt")
    with pytest.raises(DiskFullError, match=f"disk full while writing {best}"):
        copy_atomic(src, best)
    assert best.read_text() == "old weights" and temp_files(tmp_path) == []


def test_torch_save_past_a_real_file_size_limit_is_disk_full(tmp_path):
    done = run_child("""
        import torch
        from ocrtrain.fsutil import write_atomic
        write_atomic("best.pt", lambda fh: torch.save({"w": torch.zeros(8)}, fh))
        write_atomic("best.pt", lambda fh: torch.save({"w": torch.zeros(200_000)}, fh))
    """, tmp_path, fsize=100_000)
    assert done.returncode == 1, done.stderr
    assert f"disk full while writing best.pt" in done.stderr and "Traceback" not in done.stderr
    import torch

    assert torch.load(tmp_path / "best.pt", weights_only=True)["w"].numel() == 8
    assert temp_files(tmp_path) == []


def test_metrics_row_on_a_full_disk_leaves_no_half_line(tmp_path):
    (tmp_path / "run").mkdir()
    done = run_child("""
        from ocrtrain import runfolder
        with runfolder.RowWriter("run") as rows:
            for step in range(1, 10_000):
                rows.write({"kind": "train", "step": step, "train_loss": 0.123456789, "note": "x" * 40})
    """, tmp_path, fsize=20_000)
    assert done.returncode == 1 and "disk full while writing run/metrics.jsonl" in done.stderr, done.stderr
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines(keepends=True)
    assert lines and all(line.endswith("\n") for line in lines)
    assert [json.loads(line)["step"] for line in lines] == list(range(1, len(lines) + 1))


# ----------------------------------------------------------------- 8. disk full while training

@needs_proc
def test_full_disk_at_last_pt_names_the_file_and_keeps_the_old_one(tiny_dataset, tmp_path, monkeypatch):
    disk = FullDisk(monkeypatch, "last.pt", on=False)
    run_dir = tmp_path / "run"
    cfg = TrainConfig(**{**FAST, "max_steps": 6})

    def fill_after_first_save(event):
        if isinstance(event, TrainStep) and event.step == 3:
            disk.on = True

    with pytest.raises(RunError) as info:
        fit(cfg, tiny_dataset, run_dir, callback=fill_after_first_save)
    last = run_dir / "checkpoints" / "last.pt"
    assert f"disk full while writing {last}" in str(info.value) and "ocrtrain resume" in str(info.value)
    st = runfolder.read_status(run_dir)
    assert st.state == "failed" and "disk full" in st.error and "another disk" in st.error
    from ocrtrain.checkpoint import load_checkpoint

    assert disk.hits and load_checkpoint(last)["step"] == 2 and temp_files(run_dir) == []


@needs_proc
def test_full_disk_at_a_status_write_ends_the_run_failed_not_running(tiny_dataset, tmp_path, monkeypatch):
    disk = FullDisk(monkeypatch, "status.json", on=False)
    run_dir = tmp_path / "run"

    def fill(event):
        if isinstance(event, TrainStep) and event.step == 1:
            disk.on = True  # from now on no new status.json can be made

    with pytest.raises(DiskFullError):
        fit(TrainConfig(**FAST), tiny_dataset, run_dir, callback=fill)
    st = runfolder.read_status(run_dir)  # as stored, not as a reader infers it
    assert disk.hits >= 2 and st.state == "failed", st
    assert f"disk full while writing {run_dir / 'status.json'}" in st.error and "free space" in st.error
    assert temp_files(run_dir) == []
    assert Run(run_dir).status()["state"] == "failed"


# ----------------------------------------------------------------- 9. stale temporary files

def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_run_open_removes_temp_files_of_dead_writers_only(tmp_path):
    from ocrtrain.trainer_io import RunWriter

    run_dir = tmp_path / "run"
    runfolder.create_run(run_dir, {"format": "ocrtrain-run/1", "config": TrainConfig(**FAST).to_dict(), "data": "d"})
    ckpt = run_dir / "checkpoints"
    dead = _dead_pid()
    stale = [ckpt / f".last.pt.{dead}.140123.tmp", run_dir / f".status.json.{dead}.7.tmp",
             run_dir / "export" / f".model.pth.{dead}.tmp"]
    live = [ckpt / f".best.pt.{os.getpid()}.{threading.get_ident()}.tmp"]
    old_live = ckpt / f".versions.json.{os.getpid()}.9.tmp"  # a live pid, but nobody wrote it for a day
    others = [ckpt / "notes.tmp", ckpt / ".hidden.tmp", run_dir / "keep.txt", tmp_path / f".x.{dead}.1.tmp"]
    for path in stale + live + [old_live] + others:
        path.write_bytes(b"partial")
    day_ago = time.time() - 86400
    os.utime(old_live, (day_ago, day_ago))
    RunWriter(run_dir, main=True)
    assert [p for p in stale + [old_live] if p.exists()] == []
    assert all(p.exists() for p in live + others)


# ----------------------------------------------------------------- 2. SIGTERM to a foreground train

def test_sigterm_to_a_foreground_train_saves_last_pt_and_ends_canceled(tiny_dataset, tmp_path):
    from ocrtrain.checkpoint import load_checkpoint

    run_dir = tmp_path / "run"
    args = ["train", "--data", str(tiny_dataset), "--run", str(run_dir), "--max-steps", "50", "--val-interval", "100",
            "--save-minutes", "0", "--batch-size", "4", "--val-limit", "4", "--workers", "0", "--warmup-steps", "0",
            "--freeze-feature-extractor", "--device", "cpu", "--replay", "0", "--general-val", "0", "--no-baseline"]
    # The SIGTERM is real (`kill PID` from outside would do the same); it lands during the second step.
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from ocrtrain.trainer import Trainer
        real = Trainer.train_step

        def train_step(self, batch):
            if self.step == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            return real(self, batch)

        Trainer.train_step = train_step
        from ocrtrain.cli import main
        sys.exit(main({args!r}))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 130, (done.returncode, done.stderr[-2000:])  # was -15: killed, nothing saved
    assert "SIGTERM: stopping after this step" in done.stderr
    st = Run(run_dir).status()
    steps = [r["step"] for r in Run(run_dir).metrics("train")]
    assert st["state"] == "canceled" and steps == list(range(1, st["step"] + 1)) and st["step"] >= 2
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == st["step"]  # no validation ran


def test_resume_falls_back_to_the_newest_step_checkpoint_without_duplicate_rows(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    stop = threading.Event()
    fit(TrainConfig(**FAST, replay=0.0, save_minutes=0), tiny_dataset, run_dir, stop_event=stop,
        callback=lambda e: stop.set() if getattr(e, "step", 0) == 3 else None)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")  # as a damaged disk leaves it
    events = []
    run = resume(run_dir, callback=events.append)
    notes = " | ".join(e.text for e in events if isinstance(e, Message))
    assert "trying an older checkpoint" in notes and "step-00000002.pt at step 2" in notes
    assert "not an exact resume" in notes
    assert run.status()["state"] == "finished"
    assert [r["step"] for r in run.metrics("train")] == [1, 2, 3, 4]  # step 3 redone once, not twice
    assert [r["step"] for r in run.metrics("val")] == [2, 4]


# ----------------------------------------------------------------- 6. a dataset replaced under a running run

def test_dataset_replaced_while_training_stops_at_the_next_epoch(tmp_path):
    import shutil

    from conftest import draw_line, png_bytes
    from ocrtrain.dataset import DatasetWriter, SplitConfig

    def write(path, labels):
        with DatasetWriter(path, SplitConfig(val_fraction=0, test_fraction=0), source={"kind": "test"}) as w:
            for label in labels:
                w.add(png_bytes(draw_line(label)), label, split="train")
            w.add(png_bytes(draw_line("Egg 2")), "Egg 2", split="val")
        return path

    data = write(tmp_path / "data", [f"Ost {i}" for i in range(8)])  # 2 steps of 4 an epoch

    def swap(event):
        if getattr(event, "step", 0) == 1 and not (tmp_path / "old").exists():
            shutil.move(data, tmp_path / "old")
            write(data, [f"Melk {i}" for i in range(8)])

    with pytest.raises(RunError, match=f"dataset {data} changed since this run started"):
        fit(TrainConfig(**{**FAST, "max_steps": 6, "val_interval": 100}, replay=0.0), data, tmp_path / "run",
            callback=swap)
    st = Run(tmp_path / "run").status()
    assert st["state"] == "failed" and st["step"] == 2 and "changed since this run started" in st["error"]


# ----------------------------------------------------------------- 11. a model with NaN/inf weights

def test_non_finite_weights_are_never_saved_loaded_trained_or_exported(tiny_dataset, tmp_path):
    import torch

    from ocrtrain.checkpoint import save_checkpoint
    from ocrtrain.errors import ModelError
    from ocrtrain.export import export_easyocr
    from ocrtrain.origins import load_origin

    g2 = load_origin("english_g2")
    good = save_checkpoint(tmp_path / "good.pt", g2.model, g2.charset, g2.model_config, 1, {})
    broken = torch.load(good, weights_only=True)
    broken["state_dict"]["Prediction.weight"][0, 0] = float("nan")
    torch.save(broken, tmp_path / "nan.pt")
    with torch.no_grad():
        g2.model.Prediction.weight[0, 0] = float("inf")
    with pytest.raises(ModelError, match=r"step 2 .*not finite .*Prediction\.weight.*lower lr"):
        save_checkpoint(good, g2.model, g2.charset, g2.model_config, 2, {})
    assert torch.load(good, weights_only=True)["step"] == 1 and temp_files(tmp_path) == []  # the earlier file stays
    nan = str(tmp_path / "nan.pt")
    with pytest.raises(ModelError, match=r"nan\.pt.* not finite .*Prediction\.weight"):
        load_origin(nan)
    with pytest.raises(ModelError, match="not finite"):
        export_easyocr(nan, "nan", tmp_path / "export")
    assert not (tmp_path / "export").exists()
    # Was: every step skipped as NaN, the run "finished" with CER 1.0 and exported.
    with pytest.raises(ModelError, match="not finite"):
        fit(TrainConfig(**FAST, origin=nan, replay=0.0), tiny_dataset, tmp_path / "run")
    st = Run(tmp_path / "run").status()
    assert st["state"] == "failed" and "not finite" in st["error"]


# ----------------------------------------------------------------- 12. config.json edited before a resume

def test_resume_says_which_edited_config_values_win(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    stop = threading.Event()
    fit(TrainConfig(**FAST, lr=3e-4), tiny_dataset, run_dir, stop_event=stop,
        callback=lambda e: stop.set() if getattr(e, "step", 0) == 2 else None)
    assert Run(run_dir).status()["state"] == "canceled"
    record = json.loads((run_dir / "config.json").read_text())
    record["config"].update(max_steps=6, patience=3, lr=1e-2, batch_size=8)
    (run_dir / "config.json").write_text(json.dumps(record))
    events = []
    run = resume(run_dir, callback=events.append)
    text = next(e.text for e in events if isinstance(e, Message) and "config.json was edited" in e.text)
    assert "max_steps 4 -> 6 is used" in text and "patience 0 -> 3 is used" in text
    assert "ignored" in text and "lr 0.0003 -> 0.01" in text and "batch_size 4 -> 8" in text
    assert f"run:{run_dir}@last" in text
    st = run.status()
    assert st["state"] == "finished" and st["step"] == 6 and st["max_steps"] == 6
    rows = run.metrics("train")
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert max(r["lr"] for r in rows) <= 3e-4 and max(r["batch_size"] for r in rows) == 4
    assert "config.json was edited" in run.log_tail(200)


# ----------------------------------------------------------------- 12. one device queue per machine

def test_device_queue_spans_runs_folders(tmp_path):
    got_second = threading.Event()

    def second():
        with jobs.device_lock(tmp_path / "runs-b", "cpu", tmp_path / "runs-b" / "r2") as got:
            if got:
                got_second.set()

    with jobs.device_lock(tmp_path / "runs-a", "cpu", tmp_path / "runs-a" / "r1") as got:
        assert got
        waiter = threading.Thread(target=second, daemon=True)
        waiter.start()
        time.sleep(1.5)
        assert not got_second.is_set(), "a job under another runs folder took the same device"
    waiter.join(10)
    assert got_second.is_set()


def test_second_trainer_of_one_run_folder_is_told_at_once(tmp_path):
    run_dir = tmp_path / "runs" / "r1"
    deadline = time.monotonic() + 5
    with jobs.device_lock(None, "cpu", run_dir) as got:
        assert got
        started = time.monotonic()
        with pytest.raises(RunError, match=f"run folder {run_dir} is taken.*pid {os.getpid()}"):
            with jobs.device_lock(None, "cpu", run_dir, should_stop=lambda: time.monotonic() > deadline):
                pass
        assert time.monotonic() - started < 2
    with jobs.device_lock(None, "cpu", run_dir) as got:  # freed with the first
        assert got


def test_cli_second_foreground_train_on_a_taken_folder_fails_fast(tiny_dataset, tmp_path):
    run_dir = tmp_path / "r1"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with jobs.device_lock(None, "cpu", run_dir):
        done = subprocess.run([sys.executable, "-m", "ocrtrain", "train", "--data", str(tiny_dataset), "--run",
                               str(run_dir), "--max-steps", "1", "--device", "cpu"], env=env,
                              capture_output=True, text=True, timeout=90)
    assert done.returncode != 0 and "is taken" in done.stderr, (done.stdout, done.stderr)
    assert not (run_dir / "config.json").exists()


def test_process_checks_with_and_without_psutil(monkeypatch):
    pytest.importorskip("psutil")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with_psutil = (jobs.pid_alive(child.pid), jobs.job_token(child.pid))
        assert with_psutil[0] and with_psutil[1].startswith(f"{child.pid}:")
        assert not jobs.process_gone(child.pid, with_psutil[1])
        assert jobs.process_gone(child.pid, f"{child.pid}:1")  # same pid, other start: a reused pid
        monkeypatch.setattr(jobs, "psutil", None)
        if os.path.isdir("/proc/self"):
            proc_token = jobs.job_token(child.pid)
            assert jobs.pid_alive(child.pid) and proc_token.startswith(f"{child.pid}:")
            monkeypatch.undo()  # a token recorded without psutil still names the same process with it
            assert proc_token != with_psutil[1] and not jobs.process_gone(child.pid, proc_token)
    finally:
        child.kill()
        child.wait()
    monkeypatch.undo()
    assert not jobs.pid_alive(child.pid) and jobs.job_token(child.pid) is None


@needs_proc
def test_export_onto_a_full_disk_says_disk_full_and_leaves_nothing(tmp_path, monkeypatch):
    from ocrtrain.export import export_easyocr

    FullDisk(monkeypatch, "bundle.pth")
    with pytest.raises(DiskFullError, match=f"disk full while writing {tmp_path / 'out' / 'bundle.pth'}"):
        export_easyocr("english_g2", "bundle", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []
