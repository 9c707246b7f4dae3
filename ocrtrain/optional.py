"""Optional dependencies: the error that names the command installing a missing one.

trdg 1.8.0 (the synthetic-line renderer, imported only by ocrtrain.synth) pins a yanked
arabic-reshaper, so pip cannot install it with its dependencies: its real dependencies are the
``synth`` extra and trdg itself is installed ``--no-deps``. A missing trdg and a missing dependency
of it are told apart.
"""
from __future__ import annotations

import sys

from .errors import InputError

__all__ = ["TRDG_REQUIREMENT", "trdg_install_command", "trdg_missing"]

TRDG_REQUIREMENT = "trdg==1.8.0"


def trdg_install_command() -> str:
    """The command that installs trdg into this interpreter without its broken pins."""
    return f"{sys.executable} -m pip install --no-deps {TRDG_REQUIREMENT}"


def trdg_missing(exc: ModuleNotFoundError) -> InputError:
    """The error for a failed ``import trdg...``: install trdg, or the synth extra it needs."""
    top = (exc.name or "").split(".")[0]
    if top == "trdg":
        return InputError(f"trdg (the synthetic-line renderer) is not installed: run `{trdg_install_command()}` "
                          "(without its dependencies: its pins are broken; they come with the synth extra, "
                          "`pip install 'ocrtrain[synth]'`)")
    return InputError(f"trdg needs the package that provides {top!r}, which is not installed: run "
                      f"`{sys.executable} -m pip install 'ocrtrain[synth]'` (in a checkout: `make setup`)")
