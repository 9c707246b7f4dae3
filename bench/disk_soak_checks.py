"""The disk-full soak's checks of one run on a full disk (see bench/disk_soak.py for the list).

`case` is a :class:`bench.disk_soak.Case` (its ``kind``: dataset, docset, bundle, run or temp, and
``outside``); `disk` the small filesystem it ran on; `text` its stdout and stderr.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

__all__ = ["check_failure", "hidden_paths", "message", "whole_problem"]

# Also an import's zip extraction folder (TMPDIR/ocrtrain-import-PID-XXXX): deleted when it ends.
_LEFTOVER = re.compile(r"(\.tmp$)|(\.partial-\d+$)|(\.old-\d+$)|(^ocrtrain-import-\d+-)")


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
        for page in docs.pages:  # a property
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


def whole_problem(case, disk: Path) -> Optional[str]:
    """None when what `case` writes on `disk` is absent or complete; else what is half-written."""
    if case.kind == "dataset":
        return _dataset_whole(disk / "ds")
    if case.kind == "docset":
        return _docset_whole(disk / "docs")
    if case.kind == "bundle":
        return _bundle_whole(disk / "bundle")
    if case.kind == "run":
        return _run_whole(disk / "run")
    return _dataset_whole(case.outside)  # temp: the dataset goes to the big disk


def message(text: str) -> str:
    """The error line(s) the user reads: the last lines that say error or disk full."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    hits = [ln for ln in lines if re.search(r"error|disk full|no space", ln, re.I)]
    return (hits or lines or [""])[-1]


def hidden_paths(text: str, disk: Path) -> list[str]:
    """Internal paths `text` names: anything under `disk` with a hidden (dot) or leftover-pattern
    part (``.ds.partial-PID/train``, ``.last.pt.PID.tmp``, ``ocrtrain-import-PID-XXXX``), and a
    ``.partial-PID`` / ``.old-PID`` / ``ocrtrain-import-PID-`` name anywhere (a relative one too)."""
    found = []
    on_disk = re.compile(re.escape(str(disk)) + r"(/[^\s:;,'\"()\[\]]*)?")
    for m in on_disk.finditer(text):
        parts = [p for p in (m[1] or "").split("/") if p]
        if any(p.startswith(".") or _LEFTOVER.search(p) for p in parts):
            found.append(m[0])
    name = r"[^\s:;,'\"()\[\]]*"
    return found + re.findall(rf"{name}(?:\.partial-|\.old-|ocrtrain-import-)\d+{name}", on_disk.sub("", text))


def _path_check(text: str, disk: Path) -> tuple[bool, str]:
    hidden = hidden_paths(text, disk)
    if hidden:
        return False, f"names internal path(s) {sorted(set(hidden))[:3]}"
    return str(disk) in text, f"{disk} not named"


def check_failure(case, disk: Path, code: int, text: str) -> dict:
    """The checks of one run that was meant to run out of space: name -> (ok, detail)."""
    low = text.lower()
    whole = whole_problem(case, disk)
    left = _leftovers(disk)
    return {
        "exit": (code != 0, f"exit {code}"),
        "disk_full": ("disk full" in low or "no space" in low, message(text)[:160]),
        "path": _path_check(text, disk),
        "fix": ("free space" in low, "no 'free space' fix"),
        "whole": (whole is None, whole or ""),
        "no_tmp": (not left, f"left {left[:4]}"),
        "no_traceback": ("Traceback (most recent call last)" not in text, "traceback"),
    }
