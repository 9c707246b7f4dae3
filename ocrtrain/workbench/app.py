"""The workbench: six tabs (Dataset, Train, Monitor, Compare, Export, Transcribe) over one work folder.

>>> # from ocrtrain.workbench import Workbench; Workbench()          # in JupyterLab or Voila
>>> # Workbench("~/ocr-work").show()
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Callable, Optional, Union

import ipywidgets as W

from .feedback import STYLE
from .workspace import Workspace

__all__ = ["Workbench"]

TAB_TITLES = ("1 · Dataset", "2 · Train", "3 · Monitor", "4 · Compare", "5 · Export", "6 · Transcribe")
DATASET, TRAIN, MONITOR, COMPARE, EXPORT, TRANSCRIBE = range(6)


class Workbench(W.VBox):
    """All panels, linked: a new dataset is offered to Train; a launched run opens in Monitor.

    `workdir` holds datasets/, runs/ and docsets/ (default: ocrtrain's home, ``$OCRTRAIN_HOME`` or
    ``~/ocrtrain``, the folder the CLI and papermill use too). A tab's panel is built when the tab is first opened, so the page is usable
    as soon as the Dataset tab is; the Monitor polls run folders in a daemon thread once built
    (:meth:`close` stops it).
    """

    def __init__(self, workdir: Union[str, Path, None] = None, poll_interval: float = 1.0,
                 start_polling: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-workbench")
        self.workspace = Workspace(workdir)
        self.poll_interval = poll_interval
        self.start_polling = start_polling
        self._panels: list[Optional[W.Widget]] = [None] * len(TAB_TITLES)
        self._factories: list[Callable[[], W.Widget]] = [
            self._make_dataset, self._make_train, self._make_monitor, self._make_compare, self._make_export,
            self._make_transcribe]
        self.tabs = W.Tab(children=[W.VBox() for _ in TAB_TITLES], titles=TAB_TITLES)
        self.tabs.add_class("ocrtrain-tabs")
        header = W.HTML(
            f"{STYLE}<div class='ocrtrain-header'><b style='font-size:1.3em'>ocrtrain workbench</b> "
            f"<span class='ocrtrain-help'>· fine-tune EasyOCR's english_g2 on your own text · work folder "
            f"<code>{html.escape(str(self.workspace.root))}</code></span></div>")
        self.children = [header, self.tabs]
        self._panel(DATASET)
        self.tabs.observe(self._on_tab, names="selected_index")

    # -- panels, built on first use -------------------------------------------------------
    def _panel(self, index: int) -> W.Widget:
        panel = self._panels[index]
        if panel is None:
            panel = self._panels[index] = self._factories[index]()
            children = list(self.tabs.children)
            children[index] = panel
            self.tabs.children = children
        return panel

    def _make_dataset(self):
        from .dataset_panel import DatasetPanel

        panel = DatasetPanel(self.workspace)
        panel.observe(self._on_dataset, names="dataset")
        return panel

    def _make_train(self):
        from .train_panel import TrainPanel

        panel = TrainPanel(self.workspace)
        panel.observe(self._on_run, names="run")
        return panel

    def _make_monitor(self):
        from .monitor_panel import MonitorPanel

        panel = MonitorPanel(self.workspace, interval=self.poll_interval)
        if self.start_polling:
            panel.start()
        return panel

    def _make_compare(self):
        from .compare_panel import ComparePanel

        return ComparePanel(self.workspace)

    def _make_export(self):
        from .export_panel import ExportPanel

        return ExportPanel(self.workspace)

    def _make_transcribe(self):
        from .transcribe_panel import TranscribePanel

        return TranscribePanel(self.workspace)

    @property
    def dataset(self):
        return self._panel(DATASET)

    @property
    def train(self):
        return self._panel(TRAIN)

    @property
    def monitor(self):
        return self._panel(MONITOR)

    @property
    def compare(self):
        return self._panel(COMPARE)

    @property
    def export(self):
        return self._panel(EXPORT)

    @property
    def transcribe(self):
        return self._panel(TRANSCRIBE)

    # -- links --------------------------------------------------------------------------
    def _on_dataset(self, change) -> None:
        # Panels not built yet list the datasets when they are; built ones are told.
        if change["new"]:
            if self._panels[TRAIN] is not None:
                self.train.data.refresh(select=change["new"])
            if self._panels[COMPARE] is not None:
                self.compare.data.refresh()
            if self._panels[EXPORT] is not None:
                self.export.parity_data.refresh()

    def _on_run(self, change) -> None:
        if change["new"]:
            self.monitor.select(change["new"])
            self.tabs.selected_index = MONITOR

    def _on_tab(self, change) -> None:
        index = change["new"]
        if index is None:
            return
        fresh = self._panels[index] is None
        panel = self._panel(index)
        if fresh:
            return
        # Lists may have changed on disk (a CLI run, a new checkpoint): reload the tab's.
        if index == TRAIN:
            panel.data.refresh()
        elif index == MONITOR:
            panel.refresh()
        elif index in (COMPARE, EXPORT, TRANSCRIBE):
            panel.refresh()

    def show(self) -> "Workbench":
        """Display the workbench (in a notebook, the last expression does the same)."""
        from IPython.display import display

        display(self)
        return self

    def close(self) -> None:
        """Stop the Monitor's polling thread and close the widgets."""
        if self._panels[MONITOR] is not None:
            self._panels[MONITOR].stop()
        super().close()
