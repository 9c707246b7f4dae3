"""Monitor tab: the runs table and one run's live curves, progress, log, Cancel / Resume.

Everything shown is read from run folders (through :mod:`ocrtrain.runfolder`: status, metrics
rows, log), so runs started from the CLI or before the page was opened appear too; a run folder
elsewhere is opened by its path and listed with them, marked as outside the home. Each
validation set of a run gets its own validation curves. A daemon thread polls about once a
second; curves are redrawn only when new records arrived, downsampled to `max_points`.
"""
from __future__ import annotations

import html
import math
import threading
import time
from pathlib import Path
from typing import Optional, Union

import ipywidgets as W
import traitlets

from ocrtrain import runfolder
from ocrtrain.fsutil import format_duration

from .feedback import StatusBox
from .follow import MetricsFollower
from .manage import FolderActions
from .open_folder import FolderOpener
from .workspace import Workspace

__all__ = ["MonitorPanel", "make_curves_figure", "noise_hint", "PERCENT_KEYS"]

ACTIVE = ("created", "queued", "running")
# (kind, key, subplot row, col, name)
TRACES = [
    ("train", "train_loss", 1, 1, "train loss"),
    ("val", "val_loss", 1, 1, "val loss"),
    ("val", "accuracy", 1, 2, "line accuracy"),
    ("val", "accuracy_ws", 1, 2, "line accuracy (spaces collapsed)"),
    ("val", "cer", 2, 1, "CER"),
    ("val", "cer_ws", 2, 1, "CER (spaces collapsed)"),
    ("train", "lr", 2, 2, "learning rate"),
]


#: How long a new figure without a browser view is rebuilt instead of updated (a view shows up within
#: a second or two; a panel used without a browser, e.g. in tests, then updates in place).
UNSEEN_S = 20.0

#: Rates drawn in percent, as the text around the charts writes them (2.0%, not 0.02).
PERCENT_KEYS = frozenset({"accuracy", "accuracy_ws", "cer", "cer_ws"})


#: A validation metric a task writes under its own name: a task without `val_loss` (e.g. one whose
#: validate() returns {"val": {"loss": ...}}) has its `loss` drawn as the val loss.
ALIASES = {("val", "val_loss"): "loss"}


def _series(follower: Optional[MetricsFollower], kind: str, key: str, max_points: int, val_set) -> tuple:
    xs, ys = follower.series(kind, key, max_points, val_set) if follower is not None else ([], [])
    if not xs and follower is not None and (kind, key) in ALIASES:
        xs, ys = follower.series(kind, ALIASES[(kind, key)], max_points, val_set)
    if key in PERCENT_KEYS:
        ys = [None if y is None else 100 * y for y in ys]
    return xs, ys


def noise_hint(n: Optional[int], accuracy: Optional[float] = None) -> str:
    """What one validation line and chance are worth on a set of `n` lines, in points of line accuracy.

    >>> noise_hint(25, 0.5)
    'validation set: 25 lines · one line = 4.0 points · ±19.6 points is noise (95%)'
    """
    if not isinstance(n, int) or n <= 0:
        return ""
    p = accuracy if isinstance(accuracy, (int, float)) and 0 <= accuracy <= 1 else 0.5
    # A binomial's 95% interval, floored at one line (a set where every line is right still has one in play).
    spread = max(100 / n, 196 * math.sqrt(max(p * (1 - p), 0.0) / n))
    return f"validation set: {n} lines · one line = {100 / n:.1f} points · ±{spread:.1f} points is noise (95%)"


def trace_specs(follower: Optional[MetricsFollower]) -> list[tuple]:
    """(kind, key, row, col, name, val_set) per trace: validation traces once per validation set
    (named "CER · SET" when a run has several sets)."""
    sets = follower.val_sets if follower is not None and follower.val_sets else [None]
    specs = []
    for kind, key, row, col, name in TRACES:
        for val_set in (sets if kind == "val" else [None]):
            label = f"{name} · {val_set}" if kind == "val" and len(sets) > 1 else name
            specs.append((kind, key, row, col, label, val_set))
    return specs


def make_curves_figure(follower: Optional[MetricsFollower] = None, max_points: int = 500):
    """A 2x2 FigureWidget (loss, line accuracy, CER, learning rate) holding `follower`'s series.

    The data goes in through the constructor: a FigureWidget drops trace updates made before
    its view exists in the browser, so a figure must be born with what it shows.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=2, subplot_titles=("loss", "line accuracy (val, %)", "CER (val, %)",
                                                        "learning rate"),
                        horizontal_spacing=0.1, vertical_spacing=0.16)
    for kind, key, row, col, name, val_set in trace_specs(follower):
        xs, ys = _series(follower, kind, key, max_points, val_set)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers" if kind == "val" else "lines",
                                 name=name, marker={"size": 5}), row=row, col=col)
    fig.update_layout(height=460, margin=dict(l=50, r=20, t=40, b=40), template="plotly_white",
                      legend=dict(orientation="h", y=-0.12))
    for col in (1, 2):  # bottom row only: a top-row axis title would sit on the subplot title below
        fig.update_xaxes(title_text="step", row=2, col=col)
    fig.update_yaxes(ticksuffix="%", row=1, col=2)
    fig.update_yaxes(ticksuffix="%", row=2, col=1)
    widget = go.FigureWidget(fig)
    # Count browser views (ipywidgets tracks them only from 0, None = untracked): the Monitor
    # rebuilds a figure that has no view yet instead of sending it updates that would be dropped.
    widget._view_count = 0
    return widget


def _fmt(v, pct: bool = False) -> str:
    if v is None:
        return "–"
    return f"{100 * v:.1f}%" if pct else f"{v:.4g}"


class MonitorPanel(W.VBox):
    """Runs table + the selected run's live view. Poll with :meth:`start`, stop with :meth:`stop`."""

    selected = traitlets.Unicode("")  # the run folder shown (path), "" for none

    def __init__(self, workspace: Workspace, interval: float = 1.0, max_points: int = 500, **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-monitor")
        self.workspace = workspace
        self.interval = interval
        self.max_points = max_points
        self._followers: dict[str, MetricsFollower] = {}
        self._rows: list[dict] = []
        self._table_html = ""
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._build_widgets()
        self.actions = self._make_actions()
        self.opener = FolderOpener(workspace, "run", self.select)
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.cancel_button.on_click(self._on_cancel)
        self.resume_button.on_click(self._on_resume)
        self.run_select.observe(self._on_select, names="value")

        self.children = [
            W.HTML("<h3>Runs</h3>"),
            self.table,
            W.HBox([self.run_select, self.refresh_button, self.cancel_button, self.resume_button]),
            self.opener,
            self.status,
            self.actions,
            W.HBox([self.progress, self.progress_text], layout=W.Layout(align_items="center")),
            self.info,
            self.fig_box,
            W.HTML("<b>log</b>"),
            self.log_view,
        ]
        self.refresh()

    def _build_widgets(self) -> None:
        self.table = W.HTML()
        self.table.add_class("ocrtrain-runs-table")
        self.table.add_class("ocrtrain-table")
        self.run_select = W.Dropdown(options=[("(no runs yet)", "")], value="", description="run",
                                     layout=W.Layout(width="420px"))
        self.run_select.add_class("ocrtrain-run-select")
        self.refresh_button = W.Button(description="Refresh", icon="refresh")
        self.refresh_button.add_class("ocrtrain-refresh")
        self.cancel_button = W.Button(description="Cancel run", icon="stop", button_style="danger", disabled=True)
        self.cancel_button.add_class("ocrtrain-cancel-run")
        self.resume_button = W.Button(description="Resume", icon="play", disabled=True)
        self.resume_button.add_class("ocrtrain-resume-run")
        self.progress = W.FloatProgress(value=0, min=0, max=1, description="progress",
                                        layout=W.Layout(width="420px"))
        self.progress.add_class("ocrtrain-run-progress")
        self.progress_text = W.HTML()
        self.progress_text.add_class("ocrtrain-run-progress-text")
        self.info = W.HTML()
        self.info.add_class("ocrtrain-run-info")
        self.log_view = W.HTML()
        self.log_view.add_class("ocrtrain-log")
        self.status = StatusBox()
        self.fig = make_curves_figure()
        self.fig_box = W.Box([self.fig], layout=W.Layout(width="100%"))
        self.fig_box.add_class("ocrtrain-curves")

    # -- polling ------------------------------------------------------------------------
    def start(self) -> "MonitorPanel":
        """Start the polling thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="ocrtrain-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling (the widgets stay)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        self.stop()
        super().close()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception as exc:  # keep following; show what went wrong
                self.status.error(exc)

    # -- reading ------------------------------------------------------------------------
    def _follower(self, path: str) -> MetricsFollower:
        f = self._followers.get(path)
        if f is None:
            f = self._followers[path] = MetricsFollower(path)
        return f

    def run_dirs(self) -> list[Path]:
        """The runs listed: the home's, then those opened by path."""
        return self.workspace.run_folders()

    def refresh(self) -> None:
        """One poll: table, selection, and the selected run's view."""
        with self._lock:
            rows = []
            from ocrtrain.runs import summarize_run

            # Status first (the summary reads it, and notices a job that died without saying so), metrics
            # second: the loop writes its last rows before "finished", so a finished run's figure
            # (rebuilt on the state change) is born with its last validation.
            for row in map(summarize_run, self.run_dirs()):
                f = self._follower(row["path"])
                f.poll()
                rows.append(_with_follower(row, f))
            # Stable order: newest started first (mtime changes with every status write).
            rows.sort(key=lambda r: (r["started"] or r["created"] or "", r["name"]), reverse=True)
            self._rows = rows
            options = [(self.workspace.mark(r["path"], r["name"]), r["path"]) for r in rows] or [("(no runs yet)", "")]
            if list(self.run_select.options) != options:
                current = self.run_select.value
                self.run_select.options = options
                values = [o[1] for o in options]
                self.run_select.value = current if current in values else values[0]
            if self.selected != self.run_select.value:
                self.selected = self.run_select.value
            self._render_table()
            self._render_selected()

    @property
    def rows(self) -> list[dict]:
        """The runs table as data (one dict per run)."""
        return list(self._rows)

    def select(self, run_dir: Union[str, Path]) -> None:
        """Show `run_dir` (e.g. just launched; one outside the home is listed from now on); a run
        folder not written yet is listed on the next poll."""
        path = str(Path(run_dir).resolve())
        with self._lock:
            if path not in [o[1] for o in self.run_select.options]:
                if runfolder.is_run_folder(path):
                    self.workspace.open_run(path)
                self.refresh()
            if path in [o[1] for o in self.run_select.options]:
                self.run_select.value = path
            self._render_selected()

    def _render_table(self) -> None:
        head = "<tr><th>run</th><th>status</th><th>progress</th><th>best CER</th><th>device</th><th>started</th><th>duration</th></tr>"
        body = []
        for r in self._rows:
            cls = ' class="selected"' if r["path"] == self.selected else ""
            prog = f'{r["step"]}/{r["max_steps"]} ({100 * r["progress"]:.0f}%)' if r["max_steps"] else str(r["step"])
            body.append(
                f'<tr{cls} data-run="{html.escape(r["name"])}"><td>{html.escape(self.workspace.mark(r["path"], r["name"]))}</td>'
                f'<td class="state-{html.escape(r["state"])}">{html.escape(r["state"])}</td>'
                f"<td>{prog}</td><td>{_fmt(r['best_cer'], pct=True)}</td><td>{html.escape(str(r['device'] or ''))}</td>"
                f"<td>{html.escape(str(r['started'] or '')[:19])}</td><td>{r['duration']}</td></tr>")
        text = (f"<table>{head}{''.join(body)}</table>" if body
                else '<div class="ocrtrain-help">No runs yet: launch one on the Train tab '
                     '(runs started with `ocrtrain train` appear here too).</div>')
        if text != self._table_html:
            self._table_html = text
            self.table.value = text

    def _render_selected(self) -> None:
        path = self.selected
        row = next((r for r in self._rows if r["path"] == path), None)
        if row is None:
            self.cancel_button.disabled = self.resume_button.disabled = True
            self.progress.value = 0
            self.progress_text.value = ""
            self.info.value = ""
            self.log_view.value = ""
            self._draw(None)
            return
        state = row["state"]
        # The engine refuses too; a disabled button says so before the click.
        self.actions.delete_button.disabled = self.actions.rename_button.disabled = \
            state in ("queued", "running") or self.workspace.is_outside(path)  # manage keeps to the home
        self.cancel_button.disabled = state not in ACTIVE
        self.resume_button.disabled = state not in ("canceled", "failed")
        self.progress.value = min(1.0, row["progress"])
        self.progress.bar_style = {"finished": "success", "failed": "danger", "canceled": "warning"}.get(state, "info")
        f = self._follower(path)
        eta = f.last_train.get("eta_s") if state == "running" else None
        eta_text = f" · ETA {format_duration(eta)}" if isinstance(eta, (int, float)) else ""
        speed = f.last_train.get("samples_per_s")
        speed_text = f" · {speed:.1f} samples/s" if isinstance(speed, (int, float)) and state == "running" else ""
        self.progress_text.value = (f'<span data-state="{html.escape(state)}" data-step="{row["step"]}" '
                                    f'data-max-steps="{row["max_steps"]}">{html.escape(state)} · step '
                                    f'{row["step"]}/{row["max_steps"] or "?"}{eta_text}{speed_text}</span>')
        last_val = f.last_val
        segments = row.get("segments") or 1
        duration = (row["duration"] or "–") + (f" over {segments} segments (resumed)" if segments > 1 else "")
        parts = [f"device {html.escape(str(row['device'] or '?'))}", f"duration {duration}"]
        if last_val:
            parts.append(f"last val: CER {_fmt(last_val.get('cer'), True)}, line accuracy "
                         f"{_fmt(last_val.get('accuracy'), True)} (step {last_val.get('step')})")
        if row["best_cer"] is not None:
            parts.append(f"best CER {_fmt(row['best_cer'], True)}")
        info = " · ".join(parts)
        hint = noise_hint(last_val.get("n"), last_val.get("accuracy")) if last_val else ""
        if hint:
            info += f'<div class="ocrtrain-help ocrtrain-val-noise" style="display:block">{html.escape(hint)}</div>'
        self._clear_stale_banner(row["name"], state)
        if row["error"]:
            info += f'<div class="ocrtrain-error">{html.escape(str(row["error"]))}</div>'
        self.info.value = info
        log = runfolder.log_tail(path)
        self.log_view.value = f"<pre>{html.escape(log) or '(no log yet)'}</pre>"
        self._draw(f, state)

    def _clear_stale_banner(self, name: str, state: str) -> None:
        """A "cancel requested" / "resumed" note is replaced once the run got where it was sent."""
        if self.status.kind != "note" or name not in self.status.text:
            return
        text = self.status.text
        if text.startswith("cancel requested") and state not in ACTIVE:
            self.status.ok(f"{name} {state}") if state == "canceled" else self.status.clear()
        elif text.startswith("resumed") and state not in ("queued", "created"):
            self.status.clear()

    def _draw(self, f: Optional[MetricsFollower], state: str = "") -> None:
        count = f.count if f is not None else 0
        sets = tuple(f.val_sets) if f is not None else ()
        key = (self.selected, count, state, sets)
        drawn = getattr(self, "_drawn_key", None)
        if key == drawn:
            return
        if drawn is None or drawn[0] != key[0] or drawn[2] != state or drawn[3] != sets:
            # Another run, the run changed state (e.g. ended while the page was loading, when
            # incremental updates may have been dropped) or a validation set appeared: a new
            # figure born with its data.
            self._drawn_key = key
            old = self.fig
            self.fig = make_curves_figure(f, self.max_points)
            self.fig.observe(self._on_view, names="_view_count")
            self._fig_born = time.monotonic()
            self.fig_box.children = [self.fig]
            old.close()
            return
        if self._unseen():
            # No browser view of this figure yet: an update now would be dropped, and a new figure
            # has no view yet either (replacing it every poll kept a slow page creating views it
            # never finished: the curves lagged further behind the run and blinked empty). Its
            # first view sends the rows that arrived meanwhile (_on_view).
            return
        self._drawn_key = key
        with self.fig.batch_update():
            for trace, (kind, name, _r, _c, _label, val_set) in zip(self.fig.data, trace_specs(f)):
                trace.x, trace.y = _series(f, kind, name, self.max_points, val_set)

    def _unseen(self) -> bool:
        """The figure was made in the last UNSEEN_S seconds and no browser view of it exists yet
        (ipywidgets counts views in ``_view_count``); updates sent now would be lost."""
        young = time.monotonic() - getattr(self, "_fig_born", 0.0) < UNSEEN_S
        return young and getattr(self.fig, "_view_count", None) == 0

    def _on_view(self, change) -> None:
        """A figure's first browser view: draw the rows that arrived while it had none."""
        if change["owner"] is self.fig and not change["old"] and change["new"]:
            with self._lock:
                self._render_selected()

    def points(self, name: str) -> int:
        """How many points the trace `name` (e.g. "train loss") shows now (for tests)."""
        for trace in self.fig.data:
            if trace.name == name:
                return len(trace.x or ())
        raise KeyError(name)

    # -- actions ------------------------------------------------------------------------
    def _on_cancel(self, _b=None) -> None:
        from ocrtrain import runs

        try:
            runs.cancel(self.selected)
        except Exception as exc:
            self.status.error(exc)
            self.refresh()
            return
        # Refresh first: a new state label rebuilds the run list, and the reselection clears the status box.
        self.refresh()
        self.status.note(f"cancel requested for {Path(self.selected).name}; it stops at the next step")

    def _on_resume(self, _b=None) -> None:
        from ocrtrain import runs

        try:
            runs.resume(self.selected, detach=True)
        except Exception as exc:
            self.status.error(exc)
            self.refresh()
            return
        # Refresh first: a new state label rebuilds the run list, and the reselection clears the status box.
        self.refresh()
        self.status.note(f"resumed {Path(self.selected).name} from its last checkpoint")

    def _make_actions(self) -> FolderActions:
        from ocrtrain.manage import delete_run, rename_run

        root = self.workspace.runs_dir
        return FolderActions("run", lambda: self.selected, lambda path: delete_run(path, root),
                             lambda path, name: rename_run(path, name, root), self._after_manage)

    def _after_manage(self, new_path: Optional[Path]) -> None:
        with self._lock:
            self.refresh()
            if new_path is not None:
                self.select(new_path)

    def _on_select(self, change) -> None:
        if change["new"] != self.selected:
            self.selected = change["new"] or ""
            self.actions.disarm()
            self.status.clear()
            with self._lock:
                self._render_table()
                self._render_selected()



def _with_follower(row: dict, f: MetricsFollower) -> dict:
    """A runs-table row with what the metrics rows already say (the status is written every few s)."""
    row = dict(row)
    step = f.last_train.get("step")
    if isinstance(step, int) and step > row["step"]:
        row["step"] = min(step, row["max_steps"]) if row["max_steps"] else step
        row["progress"] = row["step"] / row["max_steps"] if row["max_steps"] else 0.0
    if row["best_cer"] is None:
        row["best_cer"] = f.best_cer
    return row
