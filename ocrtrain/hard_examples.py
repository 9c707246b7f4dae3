"""Hard examples: after a run, generate lines rich in the characters it still misreads.

The run's model reads a validation split; :func:`ocrtrain.metrics.char_confusions` aligns each
reading with its label; the characters with the most errors (substituted or missed, at least
`min_errors`) become ``SynthConfig.rich_in`` of a new synthetic dataset rendered like the run's
own synthetic data (the first source's recorded SynthConfig when it has one, else the defaults).
Train on it next to the original data, starting from the run:
``ocrtrain train --data DS:1 --data HARD:1 --origin run:RUN@best``.

>>> hard_characters({"per_char": {"ø": {"errors": 5, "error_rate": 0.5}, " ": {"errors": 9, "error_rate": 0.1},
...                               "e": {"errors": 1, "error_rate": 0.01}}}, top=3)
['ø']
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from .errors import DatasetError
from .events import Callback, Message, emit

__all__ = ["hard_characters", "hard_example_config", "make_hard_examples"]


def hard_characters(confusions: dict, top: int = 6, min_errors: int = 2) -> list[str]:
    """The `top` label characters with the most errors (>= `min_errors`; never whitespace)."""
    ranked = sorted(((ch, s) for ch, s in confusions.get("per_char", {}).items()
                     if not ch.isspace() and s["errors"] >= min_errors),
                    key=lambda item: (-item[1]["errors"], -item[1]["error_rate"], item[0]))
    return [ch for ch, _ in ranked[:top]]


def hard_example_config(data: Union[str, Path], chars: str, count: int, seed: int):
    """The SynthConfig of dataset `data` (as recorded by ``ocrtrain synth``; defaults otherwise), rich in `chars`."""
    from .dataset import Dataset
    from .synth import SynthConfig

    recorded = Dataset(data).manifest.get("config")
    base = SynthConfig.from_dict(recorded) if isinstance(recorded, dict) and "render" in recorded else SynthConfig()
    return base.replace(count=count, seed=seed, rich_in=chars)


def _first_source(run_dir: Path) -> Path:
    from .runfolder import read_config

    record = read_config(run_dir)
    spec = record.get("data_spec") or {}
    train = spec.get("train") or [{"path": record.get("data")}]
    if not train[0].get("path"):
        raise DatasetError(f"the run {run_dir} records no training data: pass --data DS")
    return Path(train[0]["path"])


def make_hard_examples(source: str, out: Union[str, Path], data: Optional[Union[str, Path]] = None,
                       count: int = 1000, top: int = 6, min_errors: int = 2, limit: int = 500, seed: int = 77,
                       overwrite: bool = False, callback: Optional[Callback] = None) -> dict:
    """Read `data`'s val split (default: the run's first training source) with `source`, find its
    hardest characters and render `count` lines rich in them into `out`. Returns a summary; no
    dataset is written when no character is misread at least `min_errors` times."""
    from .datamix import val_split_path
    from .evaluate import evaluate, run_folder
    from .metrics import top_confusions
    from .synth import generate_dataset

    run_dir = run_folder(source)
    if data is None:
        if run_dir is None:
            raise DatasetError(f"{source} is not a run folder, so it names no data: pass --data DS")
        data = _first_source(run_dir)
    report = evaluate(source, val_split_path(data, "val"), limit=limit, callback=callback)
    chars = hard_characters(report.confusions, top, min_errors)
    summary = {"source": report.source, "data": str(data), "lines": len(report.rows),
               "metrics": {k: report.metrics.get(k) for k in ("accuracy_ws", "cer_ws")},
               "chars": "".join(chars), "confusions": top_confusions(report.confusions, 10), "dataset": None}
    if not chars:
        emit(callback, Message(f"no character is misread {min_errors} or more times on {len(report.rows)} "
                               "validation lines: nothing to generate", "info"))
        return summary
    config = hard_example_config(data, "".join(chars), count, seed)
    emit(callback, Message(f"hardest characters {''.join(chars)!r}: rendering {count} lines rich in them", "info"))
    summary["dataset"] = str(generate_dataset(config, out, callback=callback, overwrite=overwrite))
    return summary
