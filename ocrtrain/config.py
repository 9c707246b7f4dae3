"""Frozen, typed, validating configuration dataclasses and their dict/YAML/CLI forms.

Every config in ocrtrain subclasses :class:`Config`. Unknown keys are rejected (with a
suggestion), values are type-checked, and the CLI options are derived from the fields, so each
default exists once.

>>> from dataclasses import dataclass, field
>>> @dataclass(frozen=True)
... class Demo(Config):
...     count: int = field(default=10, metadata={"help": "how many"})
>>> Demo.from_dict({"count": 3}).count
3
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Optional, Union, get_args, get_origin, get_type_hints

from .errors import ConfigError

__all__ = ["Config", "add_config_arguments", "config_from_args", "check"]


def check(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless `condition` holds."""
    if not condition:
        raise ConfigError(message)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _coerce(name: str, tp: Any, value: Any, owner: str) -> Any:
    optional, inner = _is_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{owner}.{name} must not be empty (null): give a value")
    tp = inner
    if isinstance(tp, type) and issubclass(tp, Config):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{owner}.{name} must be a mapping of {tp.__name__} fields, got {value!r}")
        return tp.from_dict(value)
    origin = get_origin(tp)
    if origin is tuple:
        args = get_args(tp)
        item_tp = args[0] if args else Any
        if isinstance(value, str):
            value = [v for v in (s.strip() for s in value.split(",")) if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{owner}.{name} must be a list, got {value!r}")
        return tuple(_coerce(name, item_tp, v, owner) for v in value)
    if origin is typing.Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"{owner}.{name} = {value!r} is not one of {', '.join(map(repr, allowed))}: pick one of those"
            )
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ConfigError(f"{owner}.{name} must be true or false, got {value!r}")
    if tp is int:
        return _coerce_int(f"{owner}.{name}", value)
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{owner}.{name} must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{owner}.{name} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{owner}.{name} must be a finite number (not inf or NaN, at most about 1.8e308), "
                              f"got {value!r}: give a real value")
        return number
    if tp is str:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{owner}.{name} must be text, got {value!r}")
        return str(value)
    return value


#: Integers must fit in 64 bits (torch, numpy and the JSON readers of other tools all need that).
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1


def _coerce_int(where: str, value: Any) -> int:
    """An exact integer from an int, an integral float or a string ("12", "1e3", "1_000")."""
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    number: Any = value
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            number = int(text)  # exact: a 23-digit string stays those digits
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ConfigError(f"{where} must be an integer, got {value!r}") from None
    if isinstance(number, float):
        if not math.isfinite(number):
            raise ConfigError(f"{where} must be an integer between {INT_MIN} and {INT_MAX}, got {value!r}")
        if number != int(number):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        number = int(number)
    if not INT_MIN <= number <= INT_MAX:
        raise ConfigError(f"{where} = {value!r} is out of range: it must be between {INT_MIN} and {INT_MAX}")
    return number


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of all configs: frozen, typed, validated, strict about keys."""

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            coerced = _coerce(f.name, hints[f.name], value, type(self).__name__)
            if coerced is not value:
                object.__setattr__(self, f.name, coerced)
            choices = f.metadata.get("choices")
            if choices and coerced is not None and coerced not in choices:
                raise ConfigError(
                    f"{type(self).__name__}.{f.name} = {coerced!r} is not one of "
                    f"{', '.join(map(repr, choices))}: pick one of those"
                )
        self.validate()

    def validate(self) -> None:
        """Subclasses check cross-field rules here and raise ConfigError."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: Optional[Mapping[str, Any]] = None, **overrides: Any):
        """Build from a mapping, rejecting unknown keys with a did-you-mean hint."""
        merged = dict(data or {})
        merged.update(overrides)
        names = cls.field_names()
        unknown = [k for k in merged if k not in names]
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, names, n=1)
                hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ConfigError(
                f"unknown {cls.__name__} key(s) {', '.join(hints)}: valid keys are {', '.join(names)}"
            )
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Config):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = [x.to_dict() if isinstance(x, Config) else x for x in v]
            out[f.name] = v
        return out

    def replace(self, **changes: Any):
        """A copy with some fields changed (validated again)."""
        return self.from_dict({**self.to_dict(), **changes})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_file(cls, path: Union[str, Path]):
        """Load from a .yaml/.yml/.json file."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist: check the path")
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            try:
                data = yaml.safe_load(text) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path} is not valid YAML ({exc}): fix the syntax") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of {cls.__name__} keys, got {type(data).__name__}")
        return cls.from_dict(data)


def _cli_name(prefix: str, name: str) -> str:
    return "--" + (prefix + name).replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "",
                         skip: tuple[str, ...] = ()) -> None:
    """Add one option per scalar/tuple field of `cls` (nested configs get `prefix-` names).

    Options default to None (meaning "keep the config's default"), and help shows the default.
    """
    hints = get_type_hints(cls)
    group = parser.add_argument_group(cls.__name__ + (f" ({prefix.rstrip('_')})" if prefix else ""))
    for f in dataclasses.fields(cls):
        if f.name in skip or f.metadata.get("cli") is False:
            continue
        _, tp = _is_optional(hints[f.name])
        if isinstance(tp, type) and issubclass(tp, Config):
            add_config_arguments(parser, tp, prefix=prefix + f.name + "_")
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        help_text = f.metadata.get("help", "")
        choices = f.metadata.get("choices")
        if get_origin(tp) is typing.Literal:
            choices = get_args(tp)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{help_text} (default: {shown})".strip()
        kwargs: dict[str, Any] = dict(dest=prefix + f.name, default=None, help=help_text.replace("%", "%%"))
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = f.metadata.get("metavar", f.name.upper())
            if choices:
                kwargs["choices"] = list(choices)
                kwargs.pop("metavar")
        group.add_argument(_cli_name(prefix, f.name), **kwargs)


def config_from_args(cls: type, args: argparse.Namespace, base: Optional[Config] = None,
                     prefix: str = ""):
    """Build `cls` from parsed options, starting from `base` (or the defaults)."""
    hints = get_type_hints(cls)
    data = base.to_dict() if base is not None else {}
    for f in dataclasses.fields(cls):
        _, tp = _is_optional(hints[f.name])
        if isinstance(tp, type) and issubclass(tp, Config):
            sub_base = getattr(base, f.name) if base is not None else None
            data[f.name] = config_from_args(tp, args, sub_base, prefix=prefix + f.name + "_").to_dict()
            continue
        value = getattr(args, prefix + f.name, None)
        if value is not None:
            data[f.name] = value
    return cls.from_dict(data)
