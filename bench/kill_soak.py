"""Kill soak: N random ``kill -9`` of a real training process, each followed by a resume.

A tiny synthetic dataset is made (``ocrtrain synth``'s generator), then ``ocrtrain train`` runs in
the foreground (quick-cpu template, few hundred steps, time-based saves every few seconds) and is
killed with SIGKILL at a random moment: a random time after the process started, or (half of the
kills, ``--training-share``) after its training loop began, so kills land in start-up, steps,
time-based saves of last.pt and a validation's checkpoint writes. After each kill ``ocrtrain
resume RUN`` continues (a run killed before its folder existed starts again); the last resume runs
to the end. Runs use the default replay share (``--replay 0.25``); its lines are rendered into the
cache once before the first kill (``--replay 0`` trains without them). After every kill and at the end the run folder is checked:

- resumes finished: resumes that ran until the next kill or to the end without an error of their own
- corrupt checkpoints: ``*.pt`` files that ``load_checkpoint`` refuses (or a damaged versions/status file)
- status lies: the run reads as queued/running (``Run.status``) while its process is dead, or a
  finished run that does not read "finished"
- duplicated rows: metrics rows of a (kind, step, set) seen more than once
- row gaps: a finished run whose train rows are not steps 1..max once each, or a validation set's
  rows not at every validation step
- stale temp files: ``*.tmp`` files of a killed process still there after the next resume started

    python -m bench.kill_soak [--kills 20] [--max-steps 300] [--lines 300] [--seed 0] [--json]
    python -m bench.kill_soak --kills 20 --max-steps 200 --val-interval 20 --save-seconds 2   # README figures
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _dataset(out: Path, lines: int) -> Path:
    from ocrtrain.synth import SynthConfig, generate_dataset

    generate_dataset(SynthConfig(count=lines, seed=1, workers=1), out)
    return out


def _train_cmd(data: Path, run: Path, args) -> list[str]:
    return [sys.executable, "-m", "ocrtrain", "train", "--data", str(data), "--run", str(run),
            "--template", "quick-cpu", "--max-steps", str(args.max_steps), "--val-interval", str(args.val_interval),
            "--batch-size", "8", "--val-limit", "16", "--save-minutes", str(args.save_seconds / 60),
            "--general-val", "0", "--no-baseline", "--device", "cpu", "--workers", "0", "--replay", str(args.replay),
            "--replay-lines", str(args.replay_lines)]


def _replay_cache(args) -> None:
    """Render the default replay lines into the cache before the first kill: rendering is not resumable
    (a kill restarts it), so kills timed from process start would otherwise keep landing in it."""
    if args.replay > 0:
        from ocrtrain.datamix import replay_source_path

        replay_source_path(args.replay_lines)


def _resume_cmd(run: Path) -> list[str]:
    return [sys.executable, "-m", "ocrtrain", "resume", str(run)]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def _corrupt(run: Path) -> list[str]:
    """Checkpoints and records of `run` that do not load."""
    from ocrtrain import runfolder
    from ocrtrain.checkpoint import load_checkpoint
    from ocrtrain.errors import OcrtrainError

    bad = []
    for path in sorted(runfolder.files(run).checkpoints.glob("*.pt")):
        try:
            load_checkpoint(path)
        except OcrtrainError as exc:
            bad.append(f"{path.name}: {str(exc)[:120]}")
    for read in (runfolder.read_versions, runfolder.read_status, runfolder.read_config):
        try:
            read(run)
        except OcrtrainError as exc:
            bad.append(f"{read.__name__}: {str(exc)[:120]}")
    return bad


def _duplicates(run: Path) -> int:
    from ocrtrain import runfolder

    keys = Counter((r.kind, r.step, getattr(r, "val_set", None)) for r in runfolder.read_rows(run))
    return sum(n - 1 for n in keys.values() if n > 1)


def _temp_files(run: Path, pid: int) -> list[str]:
    pattern = re.compile(rf"\.{pid}(\.\d+)?\.tmp$")
    return [p.name for p in run.rglob("*.tmp") if pattern.search(p.name)]


def _resumed_from(run: Path, seen: int) -> tuple[str, int, int]:
    """What the newest resume said in its log lines after byte `seen`: ("checkpoint"|"origin"|"",
    the step it resumed at, the log size now)."""
    from ocrtrain import runfolder

    log = runfolder.files(run).log
    text = log.read_bytes()[seen:].decode("utf-8", "replace") if log.is_file() else ""
    found = re.search(r"resuming from \S+ at step (\d+)", text)
    kind = "checkpoint" if found else "origin" if "no checkpoint to resume from" in text else ""
    return kind, int(found.group(1)) if found else 0, (log.stat().st_size if log.is_file() else 0)


def _last_step(run: Path) -> int:
    from ocrtrain import runfolder

    steps = [r.step for r in runfolder.read_rows(run, "train")]
    return max(steps) if steps else 0


class Soak:
    """The counters of one soak."""

    def __init__(self, data: Path, runs: Path, args):
        self.data, self.runs, self.args = data, runs, args
        self.rng = random.Random(args.seed)
        self.generation = 0
        self.run = self._new_run_dir()
        self.counts = Counter()
        self.notes: list[str] = []
        self.stale: list[str] = []
        self.step_at_kill = 0

    def _new_run_dir(self) -> Path:
        self.generation += 1
        return self.runs / f"soak-{self.generation}"

    def _start(self, fresh: bool) -> subprocess.Popen:
        cmd = _train_cmd(self.data, self.run, self.args) if fresh else _resume_cmd(self.run)
        out = open(self.runs / f"{self.run.name}.out", "ab")
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT)

    def _check_after_kill(self, pid: int) -> None:
        from ocrtrain.runs import Run

        if not self.run.is_dir():
            return
        state = Run(self.run).status()["state"]
        if state in ("queued", "running"):
            self.counts["status_lies"] += 1
            self.notes.append(f"after kill of {pid}: status reads {state}")
        bad = _corrupt(self.run)
        self.counts["corrupt"] += len(bad)
        self.notes += bad
        self.counts["duplicated_rows"] += _duplicates(self.run)

    def _kill_at_random(self, proc: subprocess.Popen, log_seen: int) -> int:
        """SIGKILL `proc` a random time after it started or (share --training-share) after its
        training loop began, so kills land in start-up, steps, saves and validations; its exit code."""
        from ocrtrain import runfolder

        deadline = time.monotonic() + self.args.final_timeout
        if self.rng.random() < self.args.training_share:
            log = runfolder.files(self.run).log
            while proc.poll() is None and time.monotonic() < deadline:  # until "N steps from step K"
                if log.is_file() and b" steps from step " in log.read_bytes()[log_seen:]:
                    break
                time.sleep(0.1)
            delay = self.rng.uniform(0.0, self.args.max_train_seconds)
            self.counts["kills_timed_from_training"] += 1
        else:
            delay = self.rng.uniform(self.args.min_seconds, self.args.max_seconds)
        try:
            return proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            return proc.wait()

    def cycle(self, i: int, fresh: bool, last_pid: int, log_seen: int) -> tuple[int, int, bool]:
        """One process: start (train or resume), kill it at a random moment (unless it is the last);
        returns (its pid, log bytes seen, whether the run finished)."""
        proc = self._start(fresh)
        final = i == self.args.kills
        if final:
            code = proc.wait(timeout=self.args.final_timeout)
        else:
            code = self._kill_at_random(proc, log_seen)
        if not fresh:
            kind, at, log_seen = _resumed_from(self.run, log_seen)
            self.counts[f"resumed_from_{kind or 'not_reached'}"] += 1
            if kind:
                self.counts["steps_redone"] += max(0, self.step_at_kill - at)
            left = _temp_files(self.run, last_pid) if kind else []
            self.stale += left
        if code == -signal.SIGKILL:
            self.counts["kills"] += 1
            self.counts["kills_mid_write"] += bool(self.run.is_dir() and _temp_files(self.run, proc.pid))
            self.step_at_kill = _last_step(self.run) if self.run.is_dir() else 0
            if not fresh:
                self.counts["resumes_finished"] += 1  # ran until our kill, no error of its own
            self._check_after_kill(proc.pid)
            return proc.pid, log_seen, False
        if code != 0:
            self.counts["errors"] += 1
            self.notes.append(f"process {proc.pid} ({'train' if fresh else 'resume'}) exited {code}: see "
                              f"{self.runs / (self.run.name + '.out')}")
            return proc.pid, log_seen, False
        if not fresh:
            self.counts["resumes_finished"] += 1
        return proc.pid, log_seen, True

    def finish_checks(self) -> None:
        from ocrtrain import runfolder
        from ocrtrain.runs import Run

        st = Run(self.run).status()
        if st["state"] != "finished":
            self.counts["status_lies"] += 1
            self.notes.append(f"final run {self.run.name} reads {st['state']}: {st.get('error')}")
        steps = [r.step for r in runfolder.read_rows(self.run, "train")]
        if steps != list(range(1, (st.get("max_steps") or 0) + 1)):
            self.notes.append(f"final train rows are not 1..{st.get('max_steps')} once each ({len(steps)} rows)")
            self.counts["row_gaps"] += 1
        last = st.get("max_steps") or 0
        wanted = sorted(set(range(self.args.val_interval, last + 1, self.args.val_interval)) | {last})
        for name in sorted({r.val_set for r in runfolder.read_rows(self.run, "val")} or {"val"}):
            got = [r.step for r in runfolder.read_rows(self.run, "val", name)]
            if got != wanted:
                self.notes.append(f"final {name} rows are at steps {got}, not {wanted}")
                self.counts["row_gaps"] += 1
        self.counts["corrupt"] += len(_corrupt(self.run))
        self.counts["duplicated_rows"] += _duplicates(self.run)


def soak(args) -> dict:
    work = Path(args.work or tempfile.mkdtemp(prefix="kill-soak-"))
    os.environ.setdefault("OCRTRAIN_HOME", str(work / "home"))
    data = work / "data"
    if not data.is_dir():
        _dataset(data, args.lines)
    _replay_cache(args)
    runs = work / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    s = Soak(data, runs, args)
    started = time.monotonic()
    fresh, pid, seen, i = True, 0, 0, 0
    from ocrtrain import runfolder
    from ocrtrain.runs import Run

    while i <= args.kills:
        if not fresh and runfolder.files(s.run).config.is_file() and Run(s.run).status()["state"] == "finished":
            # The run ended before the kill landed (e.g. during interpreter exit): count it, train a new one.
            s.finish_checks()
            s.counts["runs_finished"] += 1
            s.run, fresh, seen = s._new_run_dir(), True, 0
        if not runfolder.files(s.run).config.is_file():
            fresh = True  # killed before the run folder was made: there is nothing to resume yet
        pid, seen, finished = s.cycle(i, fresh, pid, seen)
        fresh = False
        if finished:
            s.finish_checks()
            s.counts["runs_finished"] += 1
            s.run, fresh, seen = s._new_run_dir(), True, 0
        elif i == args.kills:
            s.counts["final_not_finished"] += 1
        i += 1
    c = s.counts
    resumes = c["resumed_from_checkpoint"] + c["resumed_from_origin"] + c["resumed_from_not_reached"]
    return {"kills": c["kills"], "resumes": resumes, "resumes_finished": c["resumes_finished"],
            "resumed_from_checkpoint": c["resumed_from_checkpoint"], "restarted_from_origin": c["resumed_from_origin"],
            "killed_before_loading": c["resumed_from_not_reached"], "kills_mid_write": c["kills_mid_write"],
            "kills_timed_from_training": c["kills_timed_from_training"],
            "steps_redone": c["steps_redone"], "runs_finished": c["runs_finished"],
            "corrupt_checkpoints": c["corrupt"], "status_lies": c["status_lies"],
            "duplicated_rows": c["duplicated_rows"], "row_gaps": c["row_gaps"], "errors": c["errors"],
            "stale_temp_files": len(s.stale), "final_not_finished": c["final_not_finished"],
            "seconds": round(time.monotonic() - started, 1), "work": str(work), "notes": s.notes[:20]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20, help="kill -9 count (each followed by a resume)")
    p.add_argument("--max-steps", type=int, default=300, help="steps of each run")
    p.add_argument("--val-interval", type=int, default=25, help="validation/checkpoint every N steps")
    p.add_argument("--save-seconds", type=float, default=3.0, help="time-based last.pt cadence")
    p.add_argument("--lines", type=int, default=300, help="synthetic lines in the dataset")
    p.add_argument("--replay", type=float, default=0.25, help="replay share of each run (the train default)")
    p.add_argument("--replay-lines", type=int, default=4000, help="replay lines (rendered once before the kills)")
    p.add_argument("--min-seconds", type=float, default=2.0, help="earliest kill after a process starts")
    p.add_argument("--max-seconds", type=float, default=16.0, help="latest kill after a process starts")
    p.add_argument("--training-share", type=float, default=0.5,
                   help="share of kills timed from the start of the training loop instead of the process")
    p.add_argument("--max-train-seconds", type=float, default=10.0, help="latest such kill after training began")
    p.add_argument("--final-timeout", type=float, default=900.0, help="limit for the last resume")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", help="working folder (default: a new temporary folder)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    result = soak(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            if key != "notes":
                print(f"{key:24s} {value}")
        for note in result["notes"]:
            print("note:", note)
    ok = (result["resumes_finished"] == result["resumes"] and not result["corrupt_checkpoints"]
          and not result["status_lies"] and not result["duplicated_rows"] and not result["errors"]
          and not result["row_gaps"] and not result["stale_temp_files"] and not result["final_not_finished"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
