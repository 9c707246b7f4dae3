"""The Train tab's data section: the training dataset, datasets mixed into every batch with their
weights, and extra named validation sets. Its `spec()` is the engine's :class:`ocrtrain.datamix.DataSpec`,
exactly what ``ocrtrain train --data DIR:W ... --val NAME=DIR`` builds."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import ipywidgets as W
import traitlets

from ocrtrain.datamix import DataSpec, TrainSource, ValSource
from ocrtrain.errors import InputError

from .pickers import DatasetPicker
from .workspace import Workspace

__all__ = ["DataMixForm"]


class DataMixForm(W.VBox):
    """Primary dataset + weight, mix-in datasets + one weight each, validation sets; `value` is the spec dict."""

    value = traitlets.Dict()

    def __init__(self, workspace: Workspace, **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-data-mix")
        self.workspace = workspace
        self.primary = DatasetPicker(workspace, description="training data")
        self.primary_weight = W.BoundedFloatText(value=1.0, min=0.0, max=1e6, step=0.5, description="weight",
                                                 layout=W.Layout(width="180px"))
        self.primary_weight.add_class("ocrtrain-primary-weight")
        self.mix = W.SelectMultiple(description="mix in", rows=4, layout=W.Layout(width="460px"),
                                    style={"description_width": "120px"})
        self.mix.add_class("ocrtrain-mix-select")
        self.mix_weights = W.VBox()
        self.validate_on = W.SelectMultiple(description="also validate on", rows=4, layout=W.Layout(width="460px"),
                                            style={"description_width": "120px"})
        self.validate_on.add_class("ocrtrain-val-select")
        self.hint = W.HTML("<small>Each training dataset's share of every batch follows its weight (e.g. 1 and 1: "
                           "half real crops, half synthetic, whatever their sizes); an epoch is one pass over "
                           "the first. Every validation set is logged and plotted; the first (the training "
                           "data's val split) picks the best checkpoint unless <code>select</code> says "
                           "otherwise.</small>")
        self._weights: dict[str, W.BoundedFloatText] = {}
        self.mix.observe(self._on_mix, names="value")
        # The app refreshes the primary picker when a dataset appears: follow it with the other lists.
        self.primary.dropdown.observe(lambda _c: self._refresh_lists(), names="options")
        for w in (self.primary, self.primary_weight, self.validate_on):
            w.observe(self._update, names="value")
        advanced = W.Accordion(children=[W.VBox([self.mix, self.mix_weights, self.validate_on, self.hint])],
                               titles=("More data: mix datasets, extra validation sets",))
        advanced.selected_index = None
        self.children = [W.HBox([self.primary, self.primary_weight]), advanced]
        self.refresh()

    def refresh(self, select: Optional[str] = None) -> None:
        """Reload the dataset lists (keeping choices that still exist)."""
        self.primary.refresh(select)
        self._refresh_lists()

    def _refresh_lists(self) -> None:
        options = [(self.workspace.dataset_summary(p), str(p)) for p in self.workspace.datasets()]
        for box in (self.mix, self.validate_on):
            kept = tuple(v for v in box.value if v in {o[1] for o in options})
            box.options = options
            box.value = kept
        self._update()

    def _on_mix(self, _change=None) -> None:
        rows = []
        for path in self.mix.value:
            if path not in self._weights:
                box = W.BoundedFloatText(value=1.0, min=0.0, max=1e6, step=0.5, description=Path(path).name[:24],
                                         layout=W.Layout(width="300px"), style={"description_width": "160px"})
                box.add_class("ocrtrain-mix-weight")
                box.observe(self._update, names="value")
                self._weights[path] = box
            rows.append(self._weights[path])
        self.mix_weights.children = rows
        self._update()

    def _update(self, _change=None) -> None:
        try:
            self.value = self.spec().to_dict()
        except InputError:
            self.value = {}

    def spec(self) -> DataSpec:
        """The DataSpec chosen (InputError when no training dataset is chosen)."""
        if not self.primary.value:
            raise InputError("no training data: generate or import a dataset on the Dataset tab first")
        train = [TrainSource(self.primary.value, float(self.primary_weight.value))]
        train += [TrainSource(p, float(self._weights[p].value)) for p in self.mix.value
                  if p != self.primary.value and p in self._weights]
        val: list[ValSource] = []
        if self.validate_on.value:
            val.append(ValSource("val", self.primary.value))
            names = {"val"}
            for path in self.validate_on.value:
                name = Path(path).name[:38]
                while name in names:
                    name += "_"
                names.add(name)
                val.append(ValSource(name, path))
        return DataSpec(tuple(train), tuple(val))
