"""Issue 15, cases of the kill soak (bench/kill_soak.py) made exact: a real ``kill -9`` of a training
process at one chosen point of a validation's writes, then a resume; the run must end with every
train row and every validation row once (no gap, no duplicate).

The kill is real (SIGKILL sent by the training process to itself from a patched method in a child
Python); only where it lands is chosen.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ocrtrain import runfolder
from ocrtrain.runs import Run
from ocrtrain.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(max_steps=4, val_interval=2, batch_size=4, val_limit=4, workers=0, warmup_steps=1,
            freeze_feature_extractor=True, general_val=0, baseline=False, device="cpu", replay=0.0,
            save_minutes=0.0)

#: Where the child kills itself: the function patched (module, class or None, name), the condition on
#: its arguments (``args[0]`` is ``self`` for a method) and the time-based last.pt cadence in minutes.
KILL_POINTS = {
    # the validation's metrics row, after its step checkpoint and (before the fix) its last.pt
    "val-row": ("ocrtrain.trainer_io", "RunWriter", "append_row", "args[1].get('kind') == 'val'", 0.0),
    # the validation's last.pt, after its step checkpoint
    "val-last-pt": ("ocrtrain.trainer", "Trainer", "save_last", "len(args) > 1 and bool(args[1])", 0.0),
    # the validation itself, after the step's time-based last.pt (one after every step here)
    "val-after-timed-save": ("ocrtrain.trainer_loop", None, "_validate_and_save", "True", 1e-6),
}


def _train_until_killed(data: Path, run_dir: Path, point: str) -> int:
    module, cls, name, when, save = KILL_POINTS[point]
    code = textwrap.dedent(f"""
        import importlib, os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from ocrtrain.train import TrainConfig, fit
        owner = importlib.import_module({module!r})
        owner = getattr(owner, {cls!r}) if {cls!r} else owner
        real = getattr(owner, {name!r})

        def patched(*args, **kwargs):
            if {when}:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        setattr(owner, {name!r}, patched)
        fit(TrainConfig(**{{**{FAST!r}, "save_minutes": {save!r}}}), {str(data)!r}, {str(run_dir)!r})
    """)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=300).returncode


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_kill_during_a_validations_writes_resumes_without_a_gap(tiny_dataset, tmp_path, point):
    run_dir = tmp_path / "run"
    assert _train_until_killed(tiny_dataset, run_dir, point) == -signal.SIGKILL
    assert Run(run_dir).status()["state"] == "failed"  # dead process: not "running"
    fit(TrainConfig(**FAST), tiny_dataset, run_dir, resume=True)
    assert [r.step for r in runfolder.read_rows(run_dir, "train")] == [1, 2, 3, 4]
    assert [r.step for r in runfolder.read_rows(run_dir, "val")] == [2, 4]
    assert [v.step for v in runfolder.read_versions(run_dir).versions] == [2, 4]
    assert Run(run_dir).status()["state"] == "finished"
