"""ipywidgets front end of ocrtrain: one panel per step, and the Workbench that holds them.

Widgets hold view state only; datasets and runs live on disk and in the engine (``ocrtrain``).

>>> # from ocrtrain.workbench import Workbench; Workbench()      # JupyterLab, or Voila via `make dashboard`
"""
from __future__ import annotations

from .app import Workbench
from .audit_view import AuditView
from .compare_panel import ComparePanel
from .dataset_panel import DatasetPanel
from .export_panel import ExportPanel
from .feedback import StatusBox
from .forms import ConfigForm
from .monitor_panel import MonitorPanel
from .train_panel import TrainPanel
from .workspace import Workspace

__all__ = [
    "Workbench",
    "Workspace",
    "ConfigForm",
    "StatusBox",
    "AuditView",
    "DatasetPanel",
    "TrainPanel",
    "MonitorPanel",
    "ComparePanel",
    "ExportPanel",
]
