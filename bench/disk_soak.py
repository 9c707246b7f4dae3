"""Disk-full soak: the real CLI commands a user runs, with their output on a really full filesystem.

Each command first runs once with room to spare (the control: it must succeed, and the space it
used is measured); then it runs again on filesystems of a ladder of sizes (fractions of that space,
plus the control's size less one page), so each runs out at a different point: the first file, the
middle of its LMDBs or checkpoints, or the very last write (manifest, rename, status). The small
filesystems are tmpfs mounts (``mount -t tmpfs -o size=N``, needs root; unmounted in a finally),
so a write past the limit gets a real ENOSPC, as on a full disk. Commands:

- ``ocrtrain synth --out`` (a dataset), ``ocrtrain import`` of a labels folder and of a zip (out on
  the small disk) and of a zip with TMPDIR on the small disk (the extraction runs out)
- ``ocrtrain train`` (quick-cpu, a few steps; the run folder on the small disk: config, status,
  metrics, step checkpoints, best.pt, last.pt)
- ``ocrtrain export english_g2 --out`` (a bundle: NAME.pth, NAME.yaml, NAME.py)
- ``ocrtrain pages import`` (ICDAR box files; a document set)

Checked for every failing case and counted:

- exit: the exit code is not 0
- disk full: the message says "disk full" (or "no space")
- path: the message names the full filesystem (a path on it)
- fix: the message says what to do ("free space")
- whole: nothing half-written is presented as good: a dataset or document set is complete (its
  LMDB counts match the manifest) or absent; an export leaves the whole bundle or none of it; a
  run's status.json is not left "queued"/"running" (and holds the error); every checkpoint that is
  there loads, and every version versions.json lists is there
- no tmp: no ``*.tmp`` file, ``.partial-PID`` or ``.old-PID`` folder is left on the small disk
- no traceback: no Python traceback on stdout/stderr

    python -m bench.disk_soak [--fractions 0.02,0.3,0.6,0.9] [--only synth,train] [--max-steps 9] [--json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
PAGE = 4096
CHECKS = ("exit", "disk_full", "path", "fix", "whole", "no_tmp", "no_traceback")
_LEFTOVER = re.compile(r"(\.tmp$)|(\.partial-\d+$)|(\.old-\d+$)")


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


# --------------------------------------------------------------------------- sources (on the big disk)

def _line_png(text: str, font) -> bytes:
    import io

    from PIL import Image, ImageDraw

    left, top, right, bottom = font.getbbox(text)
    img = Image.new("L", (right + 8, 40), 255)
    ImageDraw.Draw(img).text((4, 20 - (bottom - top) // 2 - top), text, fill=0, font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _font(size: int):
    from PIL import ImageFont

    fonts = sorted((Path(__import__("trdg").__file__).parent / "fonts" / "latin").glob("*.ttf"))
    return ImageFont.truetype(str(next((f for f in fonts if f.name == "Roboto-Regular.ttf"), fonts[0])), size)


def _labels_folder(out: Path, lines: int) -> Path:
    import random

    rng = random.Random(3)
    words = ["Melk", "Brød", "Smør", "Ost", "Kaffe", "Æbler", "Løk", "Blåbær", "Egg", "Rømme", "Kjøttdeig"]
    font = _font(26)
    out.mkdir(parents=True)
    rows = []
    for i in range(lines):
        text = f"{rng.choice(words)} {rng.choice(words)} {rng.randint(1, 99)},{rng.randint(0, 99):02d}"
        (out / f"l{i:04d}.png").write_bytes(_line_png(text, font))
        rows.append(f"l{i:04d}.png\t{text}")
    (out / "labels.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def _zip_of(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:  # stored: extraction writes every byte
        for p in sorted(folder.iterdir()):
            zf.write(p, f"{folder.name}/{p.name}")
    return out


def _pages_folder(out: Path, pages: int) -> Path:
    from PIL import Image, ImageDraw

    font = _font(30)
    out.mkdir(parents=True)
    for n in range(pages):
        img = Image.new("RGB", (900, 1200), (250, 250, 245))
        draw, rows = ImageDraw.Draw(img), []
        for i in range(12):
            text, y = f"Vare {n}-{i} {10 + i},{i:02d}", 40 + i * 90
            draw.text((60, y), text, fill=(0, 0, 0), font=font)
            l, t, r, b = draw.textbbox((60, y), text, font=font)
            rows.append(f"{l - 3},{t - 3},{r + 3},{t - 3},{r + 3},{b + 3},{l - 3},{b + 3},{text}")
        img.save(out / f"page{n}.png")
        (out / f"page{n}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def _sources(work: Path, args) -> dict:
    from ocrtrain.synth import SynthConfig, generate_dataset

    src = {"data": work / "data", "labels": work / "labels", "zip": work / "labels.zip", "pages": work / "pages"}
    if not src["data"].is_dir():
        generate_dataset(SynthConfig(count=args.lines, seed=1, workers=1), src["data"])
    if not src["labels"].is_dir():
        _labels_folder(src["labels"], args.lines)
    if not src["zip"].is_file():
        _zip_of(src["labels"], src["zip"])
    if not src["pages"].is_dir():
        _pages_folder(src["pages"], args.pages)
    return src


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


def _cases(src: dict, work: Path, args) -> list[Case]:
    py = [sys.executable, "-m", "ocrtrain"]
    train = ["--template", "quick-cpu", "--max-steps", str(args.max_steps), "--val-interval", str(args.val_interval),
             "--batch-size", "4", "--val-limit", "8", "--general-val", "0", "--no-baseline", "--device", "cpu",
             "--workers", "0", "--replay", "0", "--keep-checkpoints", "2"]
    outside = work / "outside"
    return [
        Case("synth", "dataset", lambda d: py + ["synth", "--out", str(d / "ds"), "--count", str(args.lines),
                                                 "--workers", "1", "--seed", "2"]),
        Case("import labels", "dataset", lambda d: py + ["import", str(src["labels"]), "--out", str(d / "ds")]),
        Case("import zip", "dataset", lambda d: py + ["import", str(src["zip"]), "--out", str(d / "ds")]),
        Case("import zip, TMPDIR full", "temp",
             lambda d: py + ["import", str(src["zip"]), "--out", str(outside / "ds")],
             env=lambda d: {"TMPDIR": str(d)}, outside=outside / "ds"),
        Case("train", "run", lambda d: py + ["train", "--data", str(src["data"]), "--run", str(d / "run")] + train,
             timeout=600.0),
        Case("export", "bundle", lambda d: py + ["export", "english_g2", "--name", "soaknet", "--out", str(d / "bundle")]),
        Case("pages import", "docset", lambda d: py + ["pages", "import", str(src["pages"]), "--format", "icdar",
                                                       "--out", str(d / "docs")]),
    ]


# --------------------------------------------------------------------------- checks

def _leftovers(disk: Path) -> list[str]:
    return [str(p.relative_to(disk)) for p in disk.rglob("*") if _LEFTOVER.search(p.name)]


def _dataset_whole(out: Path) -> Optional[str]:
    """None when `out` is absent or a complete dataset; else what is wrong."""
    from ocrtrain.dataset import Dataset, is_dataset_folder

    if not out.exists():
        return None
    if not is_dataset_folder(out):
        return f"{out.name} exists but is not a dataset: {sorted(p.name for p in out.iterdir())[:6]}"
    try:
        ds = Dataset(out)
        want, got = ds.manifest.get("counts") or {}, ds.counts()
    except Exception as exc:  # noqa: BLE001 - any failure to open it is the finding
        return f"{out.name} reads as a dataset but does not open: {exc}"[:200]
    return None if {k: v for k, v in want.items() if v} == {k: v for k, v in got.items() if v} else \
        f"{out.name}: manifest counts {want} but LMDBs hold {got}"


def _docset_whole(out: Path) -> Optional[str]:
    from ocrtrain.documents.docset import DocumentSet, is_document_set

    if not out.exists():
        return None
    if not is_document_set(out):
        return f"{out.name} exists but is not a document set: {sorted(p.name for p in out.iterdir())[:6]}"
    try:
        docs = DocumentSet(out)
        for page in docs.pages():
            docs.lines(page.id)
    except Exception as exc:  # noqa: BLE001
        return f"{out.name} reads as a document set but does not open: {exc}"[:200]
    return None


def _bundle_whole(out: Path) -> Optional[str]:
    there = sorted(p.name for p in out.glob("soaknet.*")) if out.is_dir() else []
    return None if there in ([], ["soaknet.pth", "soaknet.py", "soaknet.yaml"]) else f"half a bundle: {there}"


def _run_whole(run: Path) -> Optional[str]:
    from ocrtrain import runfolder
    from ocrtrain.checkpoint import load_checkpoint

    if not run.exists():
        return None
    try:
        st = runfolder.read_status(run)
    except Exception as exc:  # noqa: BLE001
        return f"run status does not read: {exc}"[:200]
    if runfolder.files(run).status.is_file() and st.state in ("queued", "running", "created"):
        return f"run status left {st.state!r} (error: {st.error!r})"
    if st.state == "failed" and "disk full" not in (st.error or "").lower():
        return f"run status failed without saying disk full: {st.error!r}"[:200]
    problems = []
    for path in sorted(runfolder.files(run).checkpoints.glob("*.pt")):
        try:
            load_checkpoint(path)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{path.name} does not load: {str(exc)[:80]}")
    try:
        versions = runfolder.read_versions(run)
        problems += [f"run versions lists missing {v.file}" for v in versions.versions
                     if not (runfolder.files(run).checkpoints / v.file).is_file()]
    except Exception as exc:  # noqa: BLE001
        problems.append(f"run versions does not read: {exc}"[:120])
    return "; ".join(problems) or None


def _whole(case: Case, disk: Path) -> Optional[str]:
    if case.kind == "dataset":
        return _dataset_whole(disk / "ds")
    if case.kind == "docset":
        return _docset_whole(disk / "docs")
    if case.kind == "bundle":
        return _bundle_whole(disk / "bundle")
    if case.kind == "run":
        return _run_whole(disk / "run")
    return _dataset_whole(case.outside)  # temp: the dataset goes to the big disk


def _env(extra: dict) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "2")
    env.update(extra)
    return env


def _run(case: Case, disk: Path) -> tuple[int, str, float]:
    if case.outside is not None:
        shutil.rmtree(case.outside, ignore_errors=True)
    started = time.monotonic()
    try:
        done = subprocess.run(case.argv(disk), capture_output=True, text=True, env=_env(case.env(disk)),
                              cwd=ROOT, timeout=case.timeout)
        code, text = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code, text = 124, f"timed out after {case.timeout}s: {exc.stdout or ''}{exc.stderr or ''}"
    return code, text, time.monotonic() - started


def _message(text: str) -> str:
    """The error line(s) the user reads: the last lines that say error or disk full."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    hits = [ln for ln in lines if re.search(r"error|disk full|no space", ln, re.I)]
    return (hits or lines or [""])[-1]


def check_failure(case: Case, disk: Path, code: int, text: str) -> dict:
    """The checks of one run that was meant to run out of space: name -> (ok, detail)."""
    low = text.lower()
    whole = _whole(case, disk)
    left = _leftovers(disk)
    return {
        "exit": (code != 0, f"exit {code}"),
        "disk_full": ("disk full" in low or "no space" in low, _message(text)[:160]),
        "path": (str(disk) in text, f"{disk} not named"),
        "fix": ("free space" in low, "no 'free space' fix"),
        "whole": (whole is None, whole or ""),
        "no_tmp": (not left, f"left {left[:4]}"),
        "no_traceback": ("Traceback (most recent call last)" not in text, "traceback"),
    }


# --------------------------------------------------------------------------- the soak

def _ladder(used: int, fractions: list[float]) -> list[int]:
    sizes = {max(4 * PAGE, int(used * f) // PAGE * PAGE) for f in fractions}
    sizes.add(max(4 * PAGE, used - PAGE))  # runs out at the very last write
    return sorted(s for s in sizes if s < used)


def _control(case: Case, mounts: Mounts, base: Path, room: int) -> tuple[dict, int]:
    with mounts.small(base / "control", room) as disk:
        start = _used(disk)
        code, text, secs = _run(case, disk)
        used = _used(disk) - start
        whole = _whole(case, disk)
        if case.kind == "run" and code == 0:
            from ocrtrain import runfolder

            state = runfolder.read_status(disk / "run").state
            whole = whole or (None if state == "finished" else f"control run reads {state}")
        ok = code == 0 and whole is None and "Traceback" not in text
    row = {"case": case.name, "size": f"{room // 2**20} MiB", "used": used, "exit": code, "seconds": round(secs, 1),
           "control": True, "failed": [] if ok else ["control"],
           "notes": [] if ok else [f"control failed: exit {code}; {whole or ''}; {_message(text)[:200]}"]}
    return row, used


def _one(case: Case, mounts: Mounts, base: Path, size: int) -> dict:
    with mounts.small(base / "small", size) as disk:
        code, text, secs = _run(case, disk)
        checks = check_failure(case, disk, code, text)
    if code == 0:  # it fitted after all (the control's measure was loose): nothing to check
        return {"case": case.name, "size": f"{size // 1024} KiB", "exit": 0, "seconds": round(secs, 1),
                "fitted": True, "failed": [], "notes": [], "said": ""}
    failed = [name for name, (ok, _) in checks.items() if not ok]
    return {"case": case.name, "size": f"{size // 1024} KiB", "exit": code, "seconds": round(secs, 1),
            "failed": failed, "notes": [f"{name}: {checks[name][1]}" for name in failed],
            "said": checks["disk_full"][1]}


def soak(args) -> dict:
    work = Path(args.work or tempfile.mkdtemp(prefix="disk-soak-"))
    os.environ.setdefault("OCRTRAIN_HOME", str(work / "home"))
    mounts = Mounts(Path(args.fill_dir) if args.fill_dir else None)
    if mounts.probe(work / "mnt" / "probe") not in ("tmpfs", "fill"):
        return {"method": mounts.method, "error": mounts.method}
    started = time.monotonic()
    src = _sources(work, args)
    only = {s.strip() for s in args.only.split(",")} if args.only else None
    rows = []
    for case in _cases(src, work, args):
        if only and case.name.split(" ")[0] not in only and case.name not in only:
            continue
        control, used = _control(case, mounts, work / "mnt", args.room_mib * 2**20)
        rows.append(control)
        if control["failed"]:
            continue
        for size in _ladder(used, [float(f) for f in args.fractions.split(",")]):
            rows.append(_one(case, mounts, work / "mnt", size))
            if args.verbose:
                print(_table_line(rows[-1]), flush=True)
    return _summary(rows, mounts.method, work, time.monotonic() - started)


def _summary(rows: list[dict], method: str, work: Path, seconds: float) -> dict:
    cases = [r for r in rows if not r.get("control") and not r.get("fitted")]
    per_check = {c: sum(c in r["failed"] for r in cases) for c in CHECKS}
    return {"method": method, "controls": sum(bool(r.get("control")) for r in rows),
            "controls_failed": sum(bool(r.get("control") and r["failed"]) for r in rows),
            "cases": len(cases), "cases_passed": sum(not r["failed"] for r in cases),
            "fitted": sum(bool(r.get("fitted")) for r in rows), "failed_checks": per_check,
            "seconds": round(seconds, 1), "work": str(work), "rows": rows}


def _table_line(r: dict) -> str:
    marks = "control" if r.get("control") else "fitted" if r.get("fitted") else \
        " ".join(("x" if c in r["failed"] else ".") for c in CHECKS)
    said = r.get("said", "") or "; ".join(r["notes"])
    return f"{r['case']:24s} {r['size']:>10s} {r['exit']:>4} {r['seconds']:6.1f}s  {marks:14s} {said[:110]}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fractions", default="0.02,0.3,0.6,0.9", help="sizes as shares of the control's use")
    p.add_argument("--only", help="comma-separated case names or first words (synth, import, train, export, pages)")
    p.add_argument("--lines", type=int, default=120, help="lines of the synthetic dataset and the labels folder")
    p.add_argument("--pages", type=int, default=3, help="pages of the page import")
    p.add_argument("--max-steps", type=int, default=9, help="training steps")
    p.add_argument("--val-interval", type=int, default=3, help="validation/checkpoint every N steps")
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
        bad = ", ".join(f"{k} {v}" for k, v in result["failed_checks"].items() if v) or "none"
        print(f"disk soak ({result['method']}): {result['cases_passed']}/{result['cases']} full-disk cases passed "
              f"every check, {result['controls'] - result['controls_failed']}/{result['controls']} controls ok, "
              f"{result['fitted']} fitted; failed checks: {bad}; {result['seconds']}s")
    ok = not result["controls_failed"] and result["cases_passed"] == result["cases"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
