"""Training templates: named TrainConfig YAML files, the shipped ones (``ocrtrain/train_templates/``)
and the user's (``$OCRTRAIN_HOME/templates``, :func:`ocrtrain.home.templates_root`; user ones win).

>>> "quick-cpu" in list_templates()
True
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import ConfigError
from .fsutil import write_text_atomic
from .home import templates_root

__all__ = ["SHIPPED_TEMPLATES", "template_dirs", "list_templates", "load_template", "save_template"]

_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
SHIPPED_TEMPLATES = Path(__file__).resolve().parent / "train_templates"


def template_dirs() -> dict[str, Path]:
    """The folders templates are read from, first wins: {"user": HOME/templates, "legacy":
    ~/.ocrtrain/templates (where older versions saved them), "shipped": ...}."""
    return {"user": templates_root(), "legacy": Path.home() / ".ocrtrain" / "templates",
            "shipped": SHIPPED_TEMPLATES}


def _check_template_name(name: str) -> str:
    if not isinstance(name, str) or not _TEMPLATE_NAME.match(name) or len(name) > 100:
        raise ConfigError(f"template name {name!r} is not allowed: use letters, digits, '-', '_' and '.' "
                          "(not starting with '.' and at most 100 characters), e.g. 'receipts-cpu'")
    return name[:-5] if name.endswith(".yaml") else name


def list_templates() -> list[str]:
    """Names of all templates (user and shipped), sorted."""
    names: set[str] = set()
    for folder in template_dirs().values():
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml") if _TEMPLATE_NAME.match(p.stem))
    return sorted(names)


def load_template(name: str):
    """The TrainConfig stored under `name` (a template may set only some keys; the rest are defaults)."""
    from .train import TrainConfig

    name = _check_template_name(name)
    for folder in template_dirs().values():
        path = folder / f"{name}.yaml"
        if path.is_file():
            try:
                return TrainConfig.from_file(path)
            except ConfigError as exc:
                raise ConfigError(f"template {name!r} ({path}): {exc}") from None
    raise ConfigError(f"no template named {name!r}: choose one of {', '.join(list_templates()) or 'none'} "
                      "or save one with save_template(config, name)")


def save_template(config, name: str, overwrite: bool = False) -> Path:
    """Store `config` as a user template NAME.yaml (ConfigError for shipped names or existing ones)."""
    name = _check_template_name(name)
    if (SHIPPED_TEMPLATES / f"{name}.yaml").is_file():
        raise ConfigError(f"{name!r} is a shipped template and cannot be replaced: save under another name")
    folder = templates_root()
    path = folder / f"{name}.yaml"
    if path.exists() and not overwrite:
        raise ConfigError(f"template {name!r} already exists ({path}): pass overwrite=True or pick another name")
    write_text_atomic(path, config.to_yaml())
    return path
