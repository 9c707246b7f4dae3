"""The workbench: five tabs (Dataset, Train, Monitor, Compare, Export) over one work folder.

>>> # from widgets import Workbench; Workbench()          # in JupyterLab or Voila
>>> # Workbench("~/ocr-work").show()
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Optional, Union

import ipywidgets as W

from .compare_panel import ComparePanel
from .dataset_panel import DatasetPanel
from .export_panel import ExportPanel
from .feedback import STYLE
from .monitor_panel import MonitorPanel
from .train_panel import TrainPanel
from .workspace import Workspace

__all__ = ["Workbench"]

TAB_TITLES = ("1 · Dataset", "2 · Train", "3 · Monitor", "4 · Compare", "5 · Export")


class Workbench(W.VBox):
    """All panels, linked: a new dataset is offered to Train; a launched run opens in Monitor.

    `workdir` holds datasets/, runs/ and templates/ (default: $OCRTRAIN_HOME or ./workspace).
    The Monitor polls run folders in a daemon thread; :meth:`close` stops it.
    """

    def __init__(self, workdir: Union[str, Path, None] = None, poll_interval: float = 1.0,
                 start_polling: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-workbench")
        self.workspace = Workspace(workdir)
        self.dataset = DatasetPanel(self.workspace)
        self.train = TrainPanel(self.workspace)
        self.monitor = MonitorPanel(self.workspace, interval=poll_interval)
        self.compare = ComparePanel(self.workspace)
        self.export = ExportPanel(self.workspace)
        self.tabs = W.Tab(children=[self.dataset, self.train, self.monitor, self.compare, self.export],
                          titles=TAB_TITLES)
        self.tabs.add_class("ocrtrain-tabs")
        header = W.HTML(
            f"{STYLE}<div class='ocrtrain-header'><b style='font-size:1.3em'>ocrtrain workbench</b> "
            f"<span class='ocrtrain-help'>· fine-tune EasyOCR's english_g2 on your own text · work folder "
            f"<code>{html.escape(str(self.workspace.root))}</code></span></div>")
        self.children = [header, self.tabs]

        self.dataset.observe(self._on_dataset, names="dataset")
        self.train.observe(self._on_run, names="run")
        self.tabs.observe(self._on_tab, names="selected_index")
        if start_polling:
            self.monitor.start()

    def _on_dataset(self, change) -> None:
        if change["new"]:
            self.train.data.refresh(select=change["new"])
            self.compare.data.refresh()
            self.export.parity_data.refresh()

    def _on_run(self, change) -> None:
        if change["new"]:
            self.monitor.select(change["new"])
            self.tabs.selected_index = 2

    def _on_tab(self, change) -> None:
        # Lists may have changed on disk (a CLI run, a new checkpoint): reload the visible tab's.
        index = change["new"]
        if index == 1:
            self.train.data.refresh()
        elif index == 2:
            self.monitor.refresh()
        elif index == 3:
            self.compare.refresh()
        elif index == 4:
            self.export.refresh()

    def show(self) -> "Workbench":
        """Display the workbench (in a notebook, the last expression does the same)."""
        from IPython.display import display

        display(self)
        return self

    def close(self) -> None:
        """Stop the Monitor's polling thread and close the widgets."""
        self.monitor.close()
        super().close()
