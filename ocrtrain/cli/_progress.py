"""Terminal progress for the commands: the library's events as tqdm bars on stderr.

The library reports through :mod:`ocrtrain.events` and never imports tqdm; this module is the
command line's view of those events, as :mod:`ocrtrain.workbench` is the dashboard's. One bar per
``Progress`` stage (its total from the event, its postfix from the event's ``info``), messages printed
above the bars. tqdm draws nothing when stderr is not a terminal (a log file, CI); warnings still print.
"""
from __future__ import annotations

import sys
from typing import Optional

from ..events import Event, Message, Progress

__all__ = ["EventBars"]


class EventBars:
    """A callback that turns Progress events into tqdm bars; use it as a context manager.

    >>> # with EventBars() as bars: generate_dataset(config, "ds", callback=bars)
    """

    def __init__(self, file=None, disable: Optional[bool] = None, quiet_info: bool = True):
        self.file = file if file is not None else sys.stderr
        self.disable = disable  # None: tqdm's rule, off when the stream is not a terminal
        self.quiet_info = quiet_info
        self._bars: dict = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress):
            self._progress(event)
        elif isinstance(event, Message):
            if event.level != "info" or not self.quiet_info:
                self._write(("" if event.level == "info" else f"{event.level}: ") + event.text)

    def _progress(self, event: Progress) -> None:
        from tqdm import tqdm

        bar = self._bars.get(event.stage)
        if bar is None:
            bar = self._bars[event.stage] = tqdm(total=event.total or None, desc=event.stage, unit="",
                                                 file=self.file, disable=self.disable, dynamic_ncols=True,
                                                 leave=True)
        if event.total and bar.total != event.total:
            bar.total = event.total
        bar.update(max(0, event.done - bar.n))
        shown = {k: v for k, v in (event.info or {}).items() if isinstance(v, (int, float, str)) and len(str(v)) < 40}
        if shown:
            bar.set_postfix(shown, refresh=False)
        if event.total and event.done >= event.total:
            bar.close()
            del self._bars[event.stage]

    def _write(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=self.file)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()

    def __enter__(self) -> "EventBars":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
