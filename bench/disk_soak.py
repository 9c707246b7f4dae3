"""Disk-full soak: the real CLI commands a user runs, with their output on a really full filesystem.

Each command first runs once with room to spare (the control: it must succeed, and the space it
used is measured); then it runs again on filesystems of a ladder of sizes (fractions of that space,
plus the control's size less one page), so each runs out at a different point: the first file, the
middle of its LMDBs or checkpoints, or the very last write (manifest, rename, status). The small
filesystems are tmpfs mounts (``mount -t tmpfs -o size=N``, needs root; unmounted in a finally),
so a write past the limit gets a real ENOSPC, as on a full disk. Commands:

- ``ocrtrain synth --out`` (a dataset), ``ocrtrain import`` of a labels folder and of a zip (out on
  the small disk) and of a zip with TMPDIR on the small disk (the extraction runs out). The
  extraction folder is deleted when the import ends, so the control's disk is empty again after
  it and measures nothing: that case's ladder is taken from the zip's unpacked size instead (each
  member rounded up to a page, as tmpfs stores it), so its small disks fail both at the up-front
  free-space check and part-way through the extraction (the last rung)
- ``ocrtrain export english_g2 --out`` (a bundle: NAME.pth, NAME.yaml, NAME.py)
- ``ocrtrain pages import`` (ICDAR box files; a document set)
- ``ocrtrain train`` (quick-cpu, a few steps; the run folder on the small disk: config, status,
  metrics, step checkpoints, best.pt, last.pt). Last, and with its own shorter ladder
  (``--train-fractions``): each run starts torch and trains, so it costs ten times a data case

Checked for every failing case and counted (bench/disk_soak_checks.py):

- exit: the exit code is not 0
- disk full: the message says "disk full" (or "no space")
- path: the message names the full filesystem (a path on it), and no hidden or temporary path the
  user never asked for: a ``.NAME.partial-PID`` or ``.NAME.old-PID`` folder, a ``*.tmp`` file, an
  import's zip unpack folder (``TMPDIR/ocrtrain-import-PID-XXXX``, from ``tempfile.mkdtemp``) or any
  other hidden (dot) name on the small disk (gone by the time they read it); a ``.partial-PID``,
  ``.old-PID`` or ``ocrtrain-import-PID-`` name fails it off the small disk too (the real TMPDIR, or
  a relative path)
- fix: the message says what to do ("free space")
- whole: nothing half-written is presented as good: a dataset or document set is complete (its
  LMDB counts match the manifest) or absent; an export leaves the whole bundle or none of it; a
  run's status.json is not left "queued"/"running" (and holds the error); every checkpoint that is
  there loads, and every version versions.json lists is there
- no tmp: no ``*.tmp`` file, ``.partial-PID``, ``.old-PID`` or ``ocrtrain-import-PID-`` folder is
  left on the small disk
- no traceback: no Python traceback on stdout/stderr

The whole soak stops starting runs after ``--budget-s`` seconds (and on Ctrl-C or SIGTERM) and
still prints its summary, listing what it skipped; a run past ``--case-timeout`` counts as failed
(exit 124). Per command it prints the full-disk cases passed and failed.

    python -m bench.disk_soak [--fractions 0.02,0.3,0.6,0.9] [--train-fractions 0.3,0.9] [--only synth,train]
                              [--train-steps 6] [--budget-s 600] [--json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from bench.disk_soak_checks import check_failure, message, whole_problem
from bench.disk_soak_sources import make_sources

ROOT = Path(__file__).resolve().parents[1]
PAGE = 4096
CHECKS = ("exit", "disk_full", "path", "fix", "whole", "no_tmp", "no_traceback")
GRACE = 60.0  # seconds a run started before --budget-s may go on past it


# --------------------------------------------------------------------------- small filesystems

class Mounts:
    """Small filesystems: tmpfs mounts (root), else a dedicated folder filled up to `size` bytes free."""

    def __init__(self, fill_dir: Optional[Path]):
        self.fill_dir = fill_dir
        self.method = ""

    def probe(self, where: Path) -> str:
        """'tmpfs' when mounting works here; else 'fill' with --fill-dir; else a reason (the soak stops)."""
        where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode == 0:
            subprocess.run(["umount", str(where)], check=True)
            self.method = "tmpfs"
        elif self.fill_dir is not None:
            self.method = "fill"
        else:
            self.method = (f"mounting a tmpfs is not permitted ({done.stderr.strip() or done.returncode}); "
                           "run as root, or pass --fill-dir DIR on a disk of its own (it is filled up)")
        return self.method

    @contextlib.contextmanager
    def small(self, where: Path, size: int):
        """A folder with `size` bytes of room in all, `where` (tmpfs) or under --fill-dir (filled)."""
        if self.method == "tmpfs":
            where.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
            try:
                yield where
            finally:
                if subprocess.run(["umount", str(where)], capture_output=True).returncode:
                    subprocess.run(["umount", "-l", str(where)], capture_output=True)
            return
        folder = Path(tempfile.mkdtemp(prefix="disk-soak-", dir=self.fill_dir))
        filler = self.fill_dir / ".disk-soak-filler"
        try:
            with open(filler, "wb") as fh:
                room = shutil.disk_usage(self.fill_dir).free - size
                if room > 0:
                    os.posix_fallocate(fh.fileno(), 0, room)
            yield folder
        finally:
            filler.unlink(missing_ok=True)
            shutil.rmtree(folder, ignore_errors=True)


def _used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


# --------------------------------------------------------------------------- cases

@dataclass
class Case:
    """One command: its argv with the small disk at `disk`, what it makes there, and its environment."""

    name: str
    kind: str  # dataset | docset | bundle | run | temp
    argv: Callable[[Path], list]
    env: Callable[[Path], dict] = field(default=lambda disk: {})
    timeout: float = 300.0
    outside: Optional[Path] = None  # output on the big disk (kind "temp"): removed before each run
    peak: Optional[Callable[[], int]] = None  # most the command holds on the small disk at once, when
    # its files there are gone after it (the control's measure is then 0)
    fractions: Optional[str] = None  # its own ladder (else --fractions)


def _unpacked_bytes(archive: Path) -> int:
    """What extracting `archive` holds on a tmpfs: each member rounded up to a page (its folders take
    no blocks there; counting a page each made the last rung fit)."""
    with zipfile.ZipFile(archive) as zf:
        return sum(-(-i.file_size // PAGE) * PAGE for i in zf.infolist() if not i.is_dir())


def _cases(src: dict, work: Path, args) -> list[Case]:
    py = [sys.executable, "-m", "ocrtrain"]
    train = ["--template", "quick-cpu", "--max-steps", str(args.train_steps), "--val-interval", str(args.val_interval),
             "--batch-size", "4", "--val-limit", "8", "--general-val", "0", "--no-baseline", "--device", "cpu",
             "--workers", "0", "--replay", "0", "--keep-checkpoints", "2"]
    outside = work / "outside"
    timeout = args.case_timeout
    return [
        Case("synth", "dataset", lambda d: py + ["synth", "--out", str(d / "ds"), "--count", str(args.lines),
                                                 "--workers", "1", "--seed", "2"], timeout=timeout),
        Case("import labels", "dataset", lambda d: py + ["import", str(src["labels"]), "--out", str(d / "ds")],
             timeout=timeout),
        Case("import zip", "dataset", lambda d: py + ["import", str(src["zip"]), "--out", str(d / "ds")],
             timeout=timeout),
        Case("import zip, TMPDIR full", "temp",
             lambda d: py + ["import", str(src["zip"]), "--out", str(outside / "ds")],
             env=lambda d: {"TMPDIR": str(d)}, outside=outside / "ds", timeout=timeout,
             peak=lambda: _unpacked_bytes(src["zip"])),
        Case("export", "bundle", lambda d: py + ["export", "english_g2", "--name", "soaknet", "--out", str(d / "bundle")],
             timeout=timeout),
        Case("pages import", "docset", lambda d: py + ["pages", "import", str(src["pages"]), "--format", "icdar",
                                                       "--out", str(d / "docs")], timeout=timeout),
        Case("train", "run", lambda d: py + ["train", "--data", str(src["data"]), "--run", str(d / "run")] + train,
             timeout=2 * timeout, fractions=args.train_fractions),
    ]


def _env(extra: dict) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "2")
    env.update(extra)
    return env


def _run(case: Case, disk: Path, deadline: Optional[float] = None) -> tuple[int, str, float]:
    """Run `case` once; it may take `case.timeout` seconds, and no more than GRACE past `deadline`."""
    if case.outside is not None:
        shutil.rmtree(case.outside, ignore_errors=True)
    started = time.monotonic()
    limit = case.timeout if deadline is None else min(case.timeout, max(30.0, deadline + GRACE - started))
    try:
        done = subprocess.run(case.argv(disk), capture_output=True, text=True, env=_env(case.env(disk)),
                              cwd=ROOT, timeout=limit)
        code, text = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code, text = 124, f"timed out after {limit:.0f}s: {exc.stdout or ''}{exc.stderr or ''}"
    return code, text, time.monotonic() - started


# --------------------------------------------------------------------------- the soak

def _ladder(used: int, fractions: list[float]) -> list[int]:
    sizes = {max(4 * PAGE, int(used * f) // PAGE * PAGE) for f in fractions}
    sizes.add(max(4 * PAGE, used - PAGE))  # runs out at the very last write
    return sorted(s for s in sizes if s < used)


def _control(case: Case, mounts: Mounts, base: Path, room: int, deadline: float) -> tuple[dict, int]:
    with mounts.small(base / "control", room) as disk:
        start = _used(disk)
        code, text, secs = _run(case, disk, deadline)
        used = _used(disk) - start
        whole = whole_problem(case, disk)
        if case.kind == "run" and code == 0:
            from ocrtrain import runfolder

            state = runfolder.read_status(disk / "run").state
            whole = whole or (None if state == "finished" else f"control run reads {state}")
        ok = code == 0 and whole is None and "Traceback" not in text
    if case.peak is not None:
        used = max(used, case.peak())
    row = {"case": case.name, "size": f"{room // 2**20} MiB", "used": used, "exit": code, "seconds": round(secs, 1),
           "control": True, "failed": [] if ok else ["control"],
           "notes": [] if ok else [f"control failed: exit {code}; {whole or ''}; {message(text)[:200]}"]}
    return row, used


def _one(case: Case, mounts: Mounts, base: Path, size: int, deadline: float) -> dict:
    with mounts.small(base / "small", size) as disk:
        code, text, secs = _run(case, disk, deadline)
        checks = check_failure(case, disk, code, text)
    if code == 0:  # it fitted after all (the control's measure was loose): nothing to check
        return {"case": case.name, "size": f"{size // 1024} KiB", "exit": 0, "seconds": round(secs, 1),
                "fitted": True, "failed": [], "notes": [], "said": ""}
    failed = [name for name, (ok, _) in checks.items() if not ok]
    return {"case": case.name, "size": f"{size // 1024} KiB", "exit": code, "seconds": round(secs, 1),
            "failed": failed, "notes": [f"{name}: {checks[name][1]}" for name in failed],
            "said": checks["disk_full"][1]}


class Stopped(Exception):
    """SIGTERM (a wrapper's timeout): stop, unmount, and still print what was done."""


def _stop(signum, frame):
    raise Stopped(f"signal {signum}")


def _run_cases(cases: list[Case], mounts: Mounts, base: Path, args, deadline: float) -> tuple[list, list, str]:
    """Controls and ladders of `cases` until `deadline`; the rows, the case names skipped, why stopped."""
    rows: list[dict] = []
    skipped: list[str] = []
    stopped = ""
    for case in cases:
        if stopped or time.monotonic() > deadline:
            stopped = stopped or f"--budget-s {args.budget_s} reached"
            skipped.append(f"{case.name} (all)")
            continue
        try:
            control, used = _control(case, mounts, base, args.room_mib * 2**20, deadline)
            rows.append(control)
            if args.verbose:
                print(_table_line(rows[-1]), flush=True)
            if control["failed"]:
                continue
            sizes = _ladder(used, [float(f) for f in (case.fractions or args.fractions).split(",")])
            for n, size in enumerate(sizes):
                if time.monotonic() > deadline:
                    stopped = f"--budget-s {args.budget_s} reached"
                    skipped.append(f"{case.name} ({len(sizes) - n} of {len(sizes)} sizes)")
                    break
                rows.append(_one(case, mounts, base, size, deadline))
                if args.verbose:
                    print(_table_line(rows[-1]), flush=True)
        except (Stopped, KeyboardInterrupt) as exc:  # the mounts' finally blocks have unmounted by now
            stopped = f"interrupted ({exc or 'Ctrl-C'})"
            skipped.append(f"{case.name} (the rest)")
    return rows, skipped, stopped


def soak(args) -> dict:
    work = Path(args.work or tempfile.mkdtemp(prefix="disk-soak-"))
    os.environ.setdefault("OCRTRAIN_HOME", str(work / "home"))
    mounts = Mounts(Path(args.fill_dir) if args.fill_dir else None)
    if mounts.probe(work / "mnt" / "probe") not in ("tmpfs", "fill"):
        return {"method": mounts.method, "error": mounts.method}
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        src = make_sources(work, args.lines, args.pages)
        only = {s.strip() for s in args.only.split(",")} if args.only else None
        cases = [c for c in _cases(src, work, args)
                 if not only or any(c.name.startswith(o) for o in only)]
        rows, skipped, stopped = _run_cases(cases, mounts, work / "mnt", args, started + args.budget_s)
    finally:
        signal.signal(signal.SIGTERM, previous)
    result = _summary(rows, mounts.method, work, time.monotonic() - started)
    result.update(skipped=skipped, stopped=stopped)
    return result


def _per_command(cases: list[dict]) -> dict:
    out: dict = {}
    for r in cases:
        done = out.setdefault(r["case"], {"passed": 0, "failed": 0})
        done["failed" if r["failed"] else "passed"] += 1
    return out


def _summary(rows: list[dict], method: str, work: Path, seconds: float) -> dict:
    cases = [r for r in rows if not r.get("control") and not r.get("fitted")]
    per_check = {c: sum(c in r["failed"] for r in cases) for c in CHECKS}
    return {"method": method, "controls": sum(bool(r.get("control")) for r in rows),
            "controls_failed": sum(bool(r.get("control") and r["failed"]) for r in rows),
            "cases": len(cases), "cases_passed": sum(not r["failed"] for r in cases),
            "fitted": sum(bool(r.get("fitted")) for r in rows), "failed_checks": per_check,
            "per_command": _per_command(cases), "timed_out": sum(r["exit"] == 124 for r in rows),
            "seconds": round(seconds, 1), "work": str(work), "rows": rows}


def _table_line(r: dict) -> str:
    marks = "control" if r.get("control") else "fitted" if r.get("fitted") else \
        " ".join(("x" if c in r["failed"] else ".") for c in CHECKS)
    said = r.get("said", "") or "; ".join(r["notes"])
    return f"{r['case']:24s} {r['size']:>10s} {r['exit']:>4} {r['seconds']:6.1f}s  {marks:14s} {said[:110]}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fractions", default="0.02,0.3,0.6,0.9", help="sizes as shares of the control's use")
    p.add_argument("--only", help="comma-separated starts of case names (synth, import, import zip, train, export, pages)")
    p.add_argument("--lines", type=int, default=120, help="lines of the synthetic dataset and the labels folder")
    p.add_argument("--pages", type=int, default=3, help="pages of the page import")
    p.add_argument("--train-fractions", default="0.3,0.9",
                   help="the train case's sizes (each run trains: keep it short); plus the control less a page")
    p.add_argument("--train-steps", "--max-steps", dest="train_steps", type=int, default=6, help="training steps")
    p.add_argument("--val-interval", type=int, default=3, help="validation/checkpoint every N steps")
    p.add_argument("--case-timeout", type=float, default=180.0,
                   help="seconds one run may take (train: twice that); past it the run counts as failed")
    p.add_argument("--budget-s", type=float, default=600.0,
                   help=f"start no run after this many seconds (one already running gets {GRACE:.0f} s more); "
                        "the summary lists what was skipped")
    p.add_argument("--room-mib", type=int, default=512, help="size of the control's filesystem")
    p.add_argument("--fill-dir", help="without mount rights: a folder on a disk of its own, filled up instead")
    p.add_argument("--work", help="working folder (default: a new temporary folder)")
    p.add_argument("--verbose", action="store_true", help="print each row as it is done")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    result = soak(args)
    if "error" in result:
        print(f"disk soak not run: {result['error']}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'case':24s} {'size':>10s} {'exit':>4} {'time':>7s}  " + " ".join(c[:1] for c in CHECKS)
              + f"  ({', '.join(CHECKS)}: x = failed)")
        for r in result["rows"]:
            print(_table_line(r))
        for r in result["rows"]:
            for note in r["notes"]:
                print(f"note: {r['case']} at {r['size']}: {note}")
        _print_summary(result)
    ok = not result["controls_failed"] and result["cases_passed"] == result["cases"] and not result["skipped"]
    return 0 if ok else 1


def _print_summary(result: dict) -> None:
    for name, done in result["per_command"].items():
        print(f"  {name:24s} {done['passed']} passed, {done['failed']} failed")
    if result["skipped"]:
        print(f"stopped: {result['stopped']}; skipped: {', '.join(result['skipped'])}")
    bad = ", ".join(f"{k} {v}" for k, v in result["failed_checks"].items() if v) or "none"
    print(f"disk soak ({result['method']}): {result['cases_passed']}/{result['cases']} full-disk cases passed "
          f"every check, {result['controls'] - result['controls_failed']}/{result['controls']} controls ok, "
          f"{result['fitted']} fitted, {result['timed_out']} timed out; failed checks: {bad}; "
          f"{result['seconds']}s" + ("; INCOMPLETE" if result["skipped"] else ""))


if __name__ == "__main__":
    sys.exit(main())
