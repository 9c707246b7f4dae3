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
>>> HardExamplesConfig(count=200).limit
500
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from .config import Config, check
from .errors import DatasetError
from .events import Callback, Message, emit

__all__ = ["HardExamplesConfig", "hard_characters", "hard_example_config", "make_hard_examples"]


@dataclass(frozen=True)
class HardExamplesConfig(Config):
    """How many validation lines are read, which characters count as hard, and what is rendered."""

    count: int = field(default=1000, metadata={"help": "lines to generate"})
    top: int = field(default=6, metadata={"help": "how many of the hardest characters"})
    min_errors: int = field(default=2, metadata={"help": "errors a character needs to count"})
    limit: int = field(default=500, metadata={"help": "validation lines read"})
    seed: int = field(default=77, metadata={"help": "seed of the generated lines"})

    def validate(self) -> None:
        for name in ("count", "top", "min_errors", "limit"):
            value = getattr(self, name)
            check(value >= 1, f"{name} must be at least 1, got {value}")


def hard_characters(confusions: dict, top: int = HardExamplesConfig.top,
                    min_errors: int = HardExamplesConfig.min_errors) -> list[str]:
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
                       config: Optional[HardExamplesConfig] = None, overwrite: bool = False,
                       callback: Optional[Callback] = None) -> dict:
    """Read `data`'s val split (default: the run's first training source) with `source`, find its
    hardest characters and render ``config.count`` lines rich in them into `out`. Returns a summary;
    no dataset is written when no character is misread at least ``config.min_errors`` times."""
    from .datamix import val_split_path
    from .evaluate import evaluate, run_folder
    from .metrics import top_confusions
    from .synth import generate_dataset

    cfg = config or HardExamplesConfig()
    run_dir = run_folder(source)
    if data is None:
        if run_dir is None:
            raise DatasetError(f"{source} is not a run folder, so it names no data: pass --data DS")
        data = _first_source(run_dir)
    report = evaluate(source, val_split_path(data, "val"), limit=cfg.limit, callback=callback)
    chars = hard_characters(report.confusions, cfg.top, cfg.min_errors)
    summary = {"source": report.source, "data": str(data), "lines": len(report.rows),
               "metrics": {k: report.metrics.get(k) for k in ("accuracy_ws", "cer_ws")},
               "chars": "".join(chars), "confusions": top_confusions(report.confusions, 10), "dataset": None}
    if not chars:
        emit(callback, Message(f"no character is misread {cfg.min_errors} or more times on {len(report.rows)} "
                               "validation lines: nothing to generate", "info"))
        return summary
    synth = hard_example_config(data, "".join(chars), cfg.count, cfg.seed)
    emit(callback, Message(f"hardest characters {''.join(chars)!r}: rendering {cfg.count} lines rich in them",
                           "info"))
    summary["dataset"] = str(generate_dataset(synth, out, callback=callback, overwrite=overwrite))
    return summary
