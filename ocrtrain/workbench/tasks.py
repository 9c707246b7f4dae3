"""Run long work off the UI thread so the page (and its Cancel button) stays responsive."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

__all__ = ["BackgroundTask", "Throttle"]


class Throttle:
    """True at most once per `interval` seconds (the first call and `force` always pass)."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self._last = 0.0

    def ready(self, force: bool = False) -> bool:
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            return True
        return False


class BackgroundTask:
    """One worker thread running `work(stop_event)`; results go to `on_done` / `on_error`.

    Widget updates from the thread render in Voila (KNOWN-TRAPS); the stop event is what the
    engine's loops poll, so Cancel stops them cooperatively.
    """

    def __init__(self, work: Callable[[threading.Event], Any], on_done: Callable[[Any], None],
                 on_error: Callable[[BaseException], None],
                 on_finally: Optional[Callable[[], None]] = None, name: str = "ocrtrain-task"):
        self.stop_event = threading.Event()
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self._work, self._on_done, self._on_error, self._on_finally = work, on_done, on_error, on_finally
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "BackgroundTask":
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = self._work(self.stop_event)
        except BaseException as exc:  # shown in the page; never lost in a dead thread
            self.error = exc
            self._on_error(exc)
        else:
            self._on_done(self.result)
        finally:
            if self._on_finally is not None:
                self._on_finally()

    def cancel(self) -> None:
        self.stop_event.set()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def join(self, timeout: Optional[float] = None) -> None:
        self.thread.join(timeout)
