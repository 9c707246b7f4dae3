"""Optional dependencies: import them, or raise an error that names the command installing them.

trdg 1.8.0 (the synthetic-line renderer) pins a yanked arabic-reshaper, so pip cannot install it
with its dependencies: its real dependencies are the ``synth`` extra and trdg itself is installed
``--no-deps``. A missing trdg or a missing dependency of it are told apart.
"""
from __future__ import annotations

import contextlib
import io
import sys

from .errors import InputError

__all__ = ["TRDG_REQUIREMENT", "trdg_install_command", "import_trdg_generator"]

TRDG_REQUIREMENT = "trdg==1.8.0"


def trdg_install_command() -> str:
    """The command that installs trdg into this interpreter without its broken pins."""
    return f"{sys.executable} -m pip install --no-deps {TRDG_REQUIREMENT}"


def import_trdg_generator():
    """trdg's ``FakeTextDataGenerator`` (trdg prints on import: silenced); InputError naming the fix."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from trdg.data_generator import FakeTextDataGenerator
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top == "trdg":
            raise InputError(f"trdg (the synthetic-line renderer) is not installed: run `{trdg_install_command()}` "
                             "(without its dependencies: its pins are broken; they come with the synth extra, "
                             "`pip install 'ocrtrain[synth]'`)") from None
        raise InputError(f"trdg needs the package that provides {top!r}, which is not installed: run "
                         f"`{sys.executable} -m pip install 'ocrtrain[synth]'` (in a checkout: `make setup`)") from None
    return FakeTextDataGenerator
