"""Every validation set of a run, origin vs a version: did it get better where it should and not
worse elsewhere (the forgetting check the Compare tab and ``ocrtrain runs RUN`` show).

Read from the run's validation rows (metrics.jsonl), so nothing is evaluated again: step 0 is the
origin itself (``--baseline``), the version is the best checkpoint unless a step is given. The
CLI's text table of these rows is :func:`ocrtrain.cli.runs.format_summary`.

>>> # for row in validation_summary("runs/r1"): print(row["val_set"], row["origin"], row["version"])
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

__all__ = ["validation_summary", "DEFAULT_METRIC"]

#: What the summary compares: line accuracy with runs of spaces collapsed (the verdict metric).
DEFAULT_METRIC = "accuracy_ws"


def _noise(n: Optional[int]) -> float:
    """One line's worth of accuracy on a set of `n` lines (1.5/n, the guard's rule), as a fraction."""
    return 1.5 / n if n else 0.0


def _verdict(delta: Optional[float], n: Optional[int], higher_better: bool) -> str:
    if delta is None:
        return "no step-0 row (run trained with --baseline off)"
    gain = delta if higher_better else -delta
    if abs(gain) <= _noise(n):
        return "same (within one line)"
    return "better" if gain > 0 else "worse"


def validation_summary(run_dir: Union[str, Path], metric: str = DEFAULT_METRIC,
                       step: Optional[int] = None) -> list[dict]:
    """One dict per validation set: set name, lines, origin value (step 0), version value and step,
    delta and verdict ("better", "worse", "same (within one line)"). The version is `step` or the
    run's best checkpoint (its last validation when none is best yet)."""
    from . import runfolder

    path = runfolder.require_run_folder(run_dir)
    rows = [r for r in runfolder.read_rows(path, kind="val")]
    if step is None:
        best = runfolder.read_versions(path).best_version()
        step = best.step if best is not None else max((r.step for r in rows), default=0)
    higher_better = not metric.startswith(("cer", "ned", "wer", "val_loss"))
    out = []
    for name in dict.fromkeys(r.val_set for r in rows):
        mine = {r.step: r.metrics for r in rows if r.val_set == name}
        origin, version = mine.get(0, {}), mine.get(step, {})
        before, after = origin.get(metric), version.get(metric)
        n = version.get("n") or origin.get("n")
        delta = after - before if before is not None and after is not None else None
        out.append({"val_set": name, "n": n, "metric": metric, "origin": before, "version": after,
                    "step": step, "delta": delta, "verdict": _verdict(delta, n, higher_better)})
    return out
