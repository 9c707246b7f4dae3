"""Fonts for synthetic lines: named pools (trdg's latin fonts, plain text faces, monospace) and
a per-character check of what a font really draws.

Pools: ``trdg`` (all of trdg's latin fonts), ``text`` (trdg's plain text faces: no display,
script, all-caps or hairline fonts), ``mono`` (monospace faces shipped as Python packages:
IBM Plex Mono, Roboto Mono, Inconsolata; never system fonts, so every machine has the same), and
``auto`` (the render preset's pool: ``mono`` for receipt-printer, ``trdg`` otherwise). Anything
else is a folder of .ttf/.otf files. trdg is located without being imported (synth owns that).

>>> sorted(POOLS)
['auto', 'mono', 'text', 'trdg']
>>> # font_paths("mono")[0].name -> 'IBMPlexMono-Bold.ttf'
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Union

from PIL import ImageFont

from .errors import InputError

__all__ = ["POOLS", "font_paths", "pool_for", "is_pool", "trdg_font_dir", "font_missing_chars"]

POOLS = ("auto", "trdg", "text", "mono")
#: Font packages (PyPI fontpkg-*) of the ``mono`` pool: packaged, so every machine draws the same pool.
MONO_PACKAGES = ("fontpkg_ibm_plex_mono", "fontpkg_roboto_mono", "fontpkg_inconsolata")
# Plain text families of trdg's latin folder, and the styles left out of the ``text`` pool.
TEXT_FAMILIES = ("Aller_", "DroidSans", "Lato-", "OpenSans-", "Raleway-", "Roboto-", "RobotoCondensed-", "Sansation-")
THIN_STYLES = ("Thin", "Hairline", "ExtraLight", "Black", "Heavy", "ExtraBold")
# Receipt printers print upright regular or bold type.
MONO_SKIPPED = ("Italic", "Thin", "ExtraLight", "Light")


def is_pool(fonts: str) -> bool:
    """True for a named pool, False for a folder of fonts (which must cover every label)."""
    return fonts in POOLS


def pool_for(fonts: str, preset: str) -> str:
    """The pool or folder `fonts` means under render preset `preset` (``auto`` resolved)."""
    if fonts != "auto":
        return fonts
    return "mono" if preset == "receipt-printer" else "trdg"


@lru_cache(maxsize=1)
def trdg_font_dir() -> Path:
    """trdg's bundled latin fonts."""
    spec = importlib.util.find_spec("trdg")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("trdg is not installed: run `make setup` (pip install --no-deps trdg==1.8.0)")
    return Path(list(spec.submodule_search_locations)[0]) / "fonts" / "latin"


def _folder(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".ttf", ".otf"))


def _mono() -> list[Path]:
    paths = []
    for name in MONO_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            files = Path(list(spec.submodule_search_locations)[0]) / "files"
            paths += [p for p in _folder(files) if not any(s in p.stem for s in MONO_SKIPPED)]
    return paths


def font_paths(fonts: str, preset: str = "plain") -> list[Path]:
    """The font files of a pool or folder (see the module doc), sorted."""
    fonts = pool_for(fonts, preset)
    if fonts == "mono":
        paths = _mono()
        if not paths:
            raise InputError("no monospace fonts found: install fontpkg-ibm-plex-mono (requirements.txt) "
                             "or set fonts to a folder of monospace .ttf files")
        return paths
    if fonts in ("trdg", "text"):
        paths = _folder(trdg_font_dir())
        if fonts == "text":
            paths = [p for p in paths if p.name.startswith(TEXT_FAMILIES)
                     and not any(s in p.stem for s in THIN_STYLES)]
        return paths
    folder = Path(fonts)
    if not folder.is_dir():
        raise InputError(f"fonts {fonts!r} is neither one of {', '.join(POOLS)} nor a folder: fix the setting")
    paths = _folder(folder)
    if not paths:
        raise InputError(f"font folder {folder} holds no .ttf/.otf fonts: add some or use fonts='trdg'")
    return paths


class _GlyphCheck:
    """Which characters one font draws faithfully; answers are memoised per character.

    PIL exposes no cmap, so a character counts as missing when it renders exactly like a
    character no font maps (the .notdef box), renders empty, or (lowercase) renders exactly like
    its capital. The basic layout engine is used because it is several times faster per call than
    raqm and draws single Latin characters identically.
    """

    def __init__(self, font_path: str):
        self.font = ImageFont.truetype(font_path, 32, layout_engine=ImageFont.Layout.BASIC)
        self.notdef = {self._mask(c) for c in ("\uffff", "\U0010fffd", "\ue000")}
        self.caps_only = _caps_only(self.font)
        self.known: dict[str, bool] = {}

    def _mask(self, c: str) -> tuple:
        m = self.font.getmask(c)
        return m.size, bytes(m)

    def draws(self, c: str) -> bool:
        if c not in self.known:
            if c.isspace():
                ok = True
            else:
                mask = self._mask(c)
                ok = mask not in self.notdef and 0 not in mask[0]
                if ok and c.islower() and c.upper() != c:
                    # All-caps fonts draw 'a' as 'A'; small-caps fonts (Amatic SC, Aller Display)
                    # as a small capital: either way the pixels would not match the label.
                    ok = not self.caps_only and mask != self._mask(c.upper())
            self.known[c] = ok
        return self.known[c]


@lru_cache(maxsize=None)
def _glyph_check(font_path: str) -> _GlyphCheck:
    return _GlyphCheck(font_path)


def _caps_only(font: ImageFont.FreeTypeFont) -> bool:
    """True when the font's g, p, y have no descenders, i.e. its lowercase are capitals."""
    try:
        base = font.getbbox("P", anchor="ls")[3]
        drops = [font.getbbox(c, anchor="ls")[3] - base for c in "gpy"]
    except (ValueError, OSError):  # a bitmap font without anchor support: assume real lowercase
        return False
    return sum(d > 0.08 * font.size for d in drops) < 2


def font_missing_chars(font_path: Union[str, Path], chars: str) -> set[str]:
    """Characters of `chars` that `font_path` cannot draw faithfully."""
    check = _glyph_check(str(font_path))
    return {c for c in set(chars) if not check.draws(c)}
