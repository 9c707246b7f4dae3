"""A form derived from a `Config` dataclass: one widget per field, validated by the config itself.

The form never re-implements a rule: it hands the raw values to ``Config.from_dict`` and shows
the engine's error text. Its result is the traitlet ``config`` (the last valid config, or None)
and ``error`` (the message, or "").

>>> # form = ConfigForm(SplitConfig); form.widget_for("val_fraction").value = 0.2
>>> # form.config.val_fraction -> 0.2
"""
from __future__ import annotations

import dataclasses
import html
import typing
from typing import Any, Iterable, Mapping, Optional, Union, get_args, get_origin, get_type_hints

import ipywidgets as W
import traitlets

from ocrtrain.config import Config
from ocrtrain.errors import ConfigError

from .feedback import StatusBox

__all__ = ["ConfigForm"]

_DESC = {"description_width": "170px"}
_LAYOUT = {"width": "380px"}


def _optional(tp: Any) -> tuple[bool, Any]:
    if get_origin(tp) in (Union, getattr(__import__("types"), "UnionType", Union)):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return True, args[0]
    return False, tp


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _label(name: str) -> str:
    return name.replace("_", " ")


class ConfigForm(W.VBox):
    """Widgets for the fields of `config_cls` (nested configs become sub-forms)."""

    config = traitlets.Any(None, allow_none=True)
    error = traitlets.Unicode("")

    def __init__(self, config_cls: type, value: Optional[Union[Config, Mapping]] = None,
                 include: Optional[Iterable[str]] = None, exclude: Iterable[str] = (),
                 title: str = "", show_errors: bool = True, nested: bool = False,
                 titles: Optional[Mapping[str, str]] = None, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(config_cls, type) and issubclass(config_cls, Config)):
            raise TypeError(f"ConfigForm needs a Config subclass, got {config_cls!r}")
        self.config_cls = config_cls
        self.add_class("ocrtrain-form")
        self.add_class(f"ocrtrain-form-{config_cls.__name__.lower()}")
        hints = get_type_hints(config_cls)
        include = set(include) if include is not None else None
        exclude = set(exclude)
        self._fields: dict[str, dataclasses.Field] = {}
        self._types: dict[str, tuple[bool, Any]] = {}
        self._inputs: dict[str, W.Widget] = {}
        self._rows: dict[str, W.Widget] = {}
        # Fields the form does not show keep the value they had (default, or the loaded config).
        self._hidden: dict[str, Any] = {}
        self._titles = dict(titles or {})  # section titles of nested configs (default: field name + help)
        rows: list[W.Widget] = []
        for f in dataclasses.fields(config_cls):
            if f.metadata.get("ui") is False or (include is not None and f.name not in include) \
                    or f.name in exclude:
                self._hidden[f.name] = _default(f)
                continue
            self._fields[f.name] = f
            self._types[f.name] = _optional(hints[f.name])
            widget, row = self._make(f, *self._types[f.name])
            self._inputs[f.name] = widget
            self._rows[f.name] = row
            rows.append(row)
        self.status = StatusBox()
        self.status.add_class("ocrtrain-form-error")
        self._show_errors = show_errors
        header = [W.HTML(f"<b>{html.escape(title)}</b>")] if title else []
        self.children = header + rows + ([self.status] if show_errors else [])
        self._loading = False
        if value is not None:
            self.set_config(value)
        self._nested = nested
        for w in self._inputs.values():
            if isinstance(w, ConfigForm):
                w.observe(self._changed, names="config")
                w.observe(self._changed, names="error")
            else:
                w.observe(self._changed, names="value")
        self.validate()

    # -- building -----------------------------------------------------------------------
    def _make(self, f: dataclasses.Field, optional: bool, tp: Any) -> tuple[W.Widget, W.Widget]:
        help_text = f.metadata.get("help", "")
        default = _default(f)
        desc = _label(f.name)
        common = dict(description=desc, style=_DESC, layout=W.Layout(**_LAYOUT), tooltip=help_text)
        choices = f.metadata.get("choices")
        if get_origin(tp) is typing.Literal:
            choices = get_args(tp)
        if isinstance(tp, type) and issubclass(tp, Config):
            sub = ConfigForm(tp, value=default, show_errors=False, nested=True)
            heading = self._titles.get(f.name) or (f"{desc}: {help_text}" if help_text else desc)
            box = W.Accordion(children=[sub], titles=(heading,))
            box.add_class(f"ocrtrain-section-{f.name}")
            box.selected_index = None
            return sub, box
        if tp is bool:
            widget: W.Widget = W.Checkbox(value=bool(default), indent=True, **common)
        elif choices:
            opts = list(choices) + ([None] if optional else [])
            widget = W.Dropdown(options=[(str(c) if c is not None else "(none)", c) for c in opts],
                                value=default, **common)
        elif tp is int and not optional:
            widget = W.IntText(value=int(default or 0), **common)
        elif tp is float and not optional:
            widget = W.FloatText(value=float(default or 0.0), **common)
        elif get_origin(tp) is tuple and get_args(tp)[:1] == (str,):
            # One entry per line: entries such as line templates may themselves hold commas.
            common["layout"] = W.Layout(width="380px", height=f"{min(8, max(3, len(default or ()) + 1)) * 1.6}em")
            widget = W.Textarea(value="\n".join(default or ()), **common)
        else:
            widget = W.Text(value=self._to_text(default), placeholder="(none)" if optional else "",
                            **common)
        widget.add_class(f"ocrtrain-field-{f.name}")
        helptext = W.HTML(f'<span class="ocrtrain-help">{html.escape(help_text)}</span>',
                          layout=W.Layout(width="auto", max_width="520px"))
        row = W.HBox([widget, helptext], layout=W.Layout(align_items="center"))
        row.add_class("ocrtrain-form-row")
        return widget, row

    @staticmethod
    def _to_text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, (tuple, list)):
            return ", ".join(map(str, value))
        return str(value)

    # -- values -------------------------------------------------------------------------
    def raw(self) -> dict[str, Any]:
        """The current widget values as a mapping for ``from_dict`` (blank text = None)."""
        out = dict(self._hidden)
        for name, w in self._inputs.items():
            if isinstance(w, ConfigForm):
                out[name] = w.raw()
                continue
            value = w.value
            optional, tp = self._types[name]
            if isinstance(w, W.Textarea):
                value = [line.strip() for line in value.splitlines() if line.strip()]
            elif isinstance(w, W.Text):
                value = value.strip()
                if value == "" and (optional or get_origin(tp) is tuple):
                    value = None if optional else []
            out[name] = value
        return out

    def build(self) -> Config:
        """The config for the current values; raises ConfigError with the engine's message."""
        return self.config_cls.from_dict(self.raw())

    def validate(self) -> Optional[Config]:
        """Build, show the result (error text or nothing), return the config or None."""
        try:
            cfg = self.build()
        except ConfigError as exc:
            self.error = str(exc)
            self.config = None
            self._mark(str(exc))
            if self._show_errors:
                self.status.error(exc)
            return None
        self.error = ""
        self.config = cfg
        self._mark("")
        if self._show_errors:
            self.status.clear()
        return cfg

    def _mark(self, message: str) -> None:
        # Outline the fields the message names, so the fix is found without reading field names.
        for name, row in self._rows.items():
            w = self._inputs[name]
            bad = bool(message) and (f".{name} " in message or f" {name} " in f" {message} "
                                     or message.startswith(f"{name} "))
            if isinstance(w, ConfigForm):
                continue
            (w.add_class if bad else w.remove_class)("ocrtrain-invalid")

    def set_config(self, value: Union[Config, Mapping]) -> None:
        """Show `value` (a config or a mapping of its fields) in the widgets."""
        data = value.to_dict() if isinstance(value, Config) else dict(value)
        self._loading = True
        try:
            for name, v in data.items():
                if name not in self._inputs:
                    if name in self._hidden:
                        self._hidden[name] = v
                    continue
                w = self._inputs[name]
                if isinstance(w, ConfigForm):
                    w.set_config(v or {})
                elif isinstance(w, W.Textarea):
                    w.value = "\n".join(map(str, v or ()))
                elif isinstance(w, W.Text):
                    w.value = self._to_text(v)
                elif isinstance(w, W.Dropdown):
                    values = [o[1] if isinstance(o, tuple) else o for o in w.options]
                    if v in values:
                        w.value = v
                elif isinstance(w, W.IntText):
                    w.value = int(v)
                elif isinstance(w, W.FloatText):
                    w.value = float(v)
                else:
                    w.value = v
        finally:
            self._loading = False
        self.validate()

    def widget_for(self, name: str) -> W.Widget:
        """The input widget of field `name` (a ConfigForm for nested configs)."""
        return self._inputs[name]

    @property
    def field_names(self) -> list[str]:
        return list(self._inputs)

    def set_disabled(self, disabled: bool) -> None:
        for w in self._inputs.values():
            if isinstance(w, ConfigForm):
                w.set_disabled(disabled)
            else:
                w.disabled = disabled

    def _changed(self, _change) -> None:
        if not self._loading:
            self.validate()
