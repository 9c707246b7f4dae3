"""`ocrtrain hard-examples RUN --out DS`: lines rich in the characters a run still misreads."""
from __future__ import annotations

import json

from ..config import add_config_arguments, config_from_args
from ..hard_examples import HardExamplesConfig

__all__ = ["register", "run"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "hard-examples", help="generate lines rich in the characters a model still misreads on validation",
        description="Read a validation split with RUN_OR_ORIGIN, rank the label characters by errors "
                    "(substituted or missed) and render --count lines rich in the hardest ones, like the run's "
                    "own synthetic data. Then: ocrtrain train --data DS:1 --data OUT:1 --origin run:RUN@best")
    p.add_argument("source", metavar="RUN_OR_ORIGIN", help="run folder (or a run name) or origin spec")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write")
    p.add_argument("--data", metavar="DS", help="dataset whose val split is read (default: the run's first source)")
    add_config_arguments(p, HardExamplesConfig)  # --count --top --min-errors --limit --seed
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..events import Message
    from ..hard_examples import make_hard_examples
    from ..home import resolve_dataset, resolve_model_source
    from ._progress import EventBars

    config = config_from_args(HardExamplesConfig, args)

    with EventBars() as bars:  # bars and warnings on stderr; the notes are the command's output
        def show(event) -> None:
            bars(event)
            if isinstance(event, Message) and event.level == "info" and not args.json:
                print(event.text, flush=True)  # between stages: no bar is open
        summary = make_hard_examples(resolve_model_source(args.source), args.out,
                                     data=resolve_dataset(args.data) if args.data else None, config=config,
                                     overwrite=args.overwrite, callback=show)
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0
    for row in summary["confusions"]:
        print(f"  {row['kind']:12} {row['gold'] or '-'!r} -> {row['pred'] or '-'!r}: {row['count']}")
    if summary["dataset"]:
        print(f"wrote {summary['dataset']}: {config.count} lines rich in {summary['chars']!r}; train on it next to your "
              f"data, e.g. ocrtrain train --data {summary['data']}:1 --data {summary['dataset']}:1 "
              f"--origin run:{args.source}@best")
    return 0
