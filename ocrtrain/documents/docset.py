"""Document-set folders, the one owner of their format: page images, their lines, a manifest.

A document set is a folder::

    manifest.json        format, pages (id, image, size, document, tag, counts), totals, content hash
    pages/PAGE.png|jpg   the page images (EXIF orientation already applied)
    lines/PAGE.json      that page's lines: id, polygon, text, status, confidence, provenance, reading
    rejected.csv         what the import could not use, where, and why

Every file is written atomically (temp file + rename). Saving one line's edit rewrites only that
page's small JSON and the manifest, so an editor can save as you type and a crash loses at most
the keystroke in flight. :class:`DocumentSetWriter` builds a new set in a hidden folder renamed
into place when complete; :class:`DocumentSet` opens one.

>>> # docs = DocumentSet("docsets/receipts"); docs.update_line("r001:0003", text="MELK", status="verified")
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Union

from ..diskspace import disk_full_message, is_disk_full
from ..errors import DatasetError
from ..fsutil import now_iso, write_json_atomic, write_text_atomic
from ..replace import partial_path, swap_into_place

__all__ = ["FORMAT", "MANIFEST", "REJECTED", "STATUSES", "PROVENANCES", "TAGS", "Line", "Page", "Reject", "DocumentSet",
           "DocumentSetWriter", "is_document_set"]

FORMAT = "ocrtrain-docset/1"
MANIFEST = "manifest.json"
REJECTED = "rejected.csv"
STATUSES = ("unreviewed", "verified", "skipped", "bad_box")
PROVENANCES = ("gt-file", "detector", "aligned", "typed")
TAGS = ("train", "val", "test")

Point = tuple[float, float]


@dataclass(frozen=True)
class Line:
    """One text line of a page: where it is (polygon, page pixels), its text and review state."""

    id: str
    page: str
    polygon: tuple[Point, ...]
    text: str = ""
    status: str = "unreviewed"
    provenance: str = "gt-file"
    confidence: Optional[float] = None
    reading: Optional[str] = None
    reading_model: Optional[str] = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise DatasetError(f"line {self.id}: status {self.status!r} is not one of {STATUSES}")
        if self.provenance not in PROVENANCES:
            raise DatasetError(f"line {self.id}: provenance {self.provenance!r} is not one of {PROVENANCES}")
        if len(self.polygon) < 3:
            raise DatasetError(f"line {self.id}: a polygon needs at least 3 points, got {len(self.polygon)}")
        object.__setattr__(self, "polygon", tuple((float(x), float(y)) for x, y in self.polygon))

    def replace(self, **changes: Any) -> "Line":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["polygon"] = [[round(x, 2), round(y, 2)] for x, y in self.polygon]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Line":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Page:
    """A page of a document set (image relative to the set's folder)."""

    id: str
    image: str
    width: int
    height: int
    document: str
    tag: Optional[str] = None
    source: str = ""
    scale: float = 1.0
    counts: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Page":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Reject:
    """Something an import or step could not use: the file, where in it, and why (with the fix)."""

    source: str
    where: str
    reason: str


def is_document_set(path: Union[str, Path]) -> bool:
    """True when `path` is a folder with a document-set manifest."""
    mf = Path(path) / MANIFEST
    if not mf.is_file():
        return False
    try:
        return json.loads(mf.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def _status_counts(lines: Iterable[Line]) -> dict:
    counts = Counter(line.status for line in lines)
    return {s: counts.get(s, 0) for s in STATUSES}


def _lines_blob(page_id: str, lines: list[Line]) -> dict:
    return {"page": page_id, "lines": [line.to_dict() for line in lines]}


def _hash_of(blob: dict) -> str:
    return hashlib.sha256(json.dumps(blob, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def _write_rejects(path: Path, rejects: Iterable[Reject]) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(["source", "where", "reason"])
    for r in rejects:
        writer.writerow([r.source, r.where, r.reason])
    write_text_atomic(path, buf.getvalue())


class DocumentSet:
    """An opened document-set folder: pages, lines, edits. See the module doc for the layout."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        mf = self.path / MANIFEST
        if not mf.is_file():
            raise DatasetError(f"{self.path} is not a document set (no {MANIFEST}): "
                               "create one with `ocrtrain pages import SOURCE --out DOCSET`")
        self.manifest = json.loads(mf.read_text(encoding="utf-8"))
        if self.manifest.get("format") != FORMAT:
            raise DatasetError(f"{mf} has format {self.manifest.get('format')!r}, expected {FORMAT!r}: "
                               "point at a folder written by `ocrtrain pages import`")
        self._pages = {p["id"]: Page.from_dict(p) for p in self.manifest.get("pages", [])}

    # -- reading ---------------------------------------------------------------------------------
    @property
    def pages(self) -> list[Page]:
        return list(self._pages.values())

    def page(self, page_id: str) -> Page:
        if page_id not in self._pages:
            raise DatasetError(f"{self.path} has no page {page_id!r} (it has {len(self._pages)} pages): "
                               "check the id with `ocrtrain pages status`")
        return self._pages[page_id]

    def image_path(self, page_id: str) -> Path:
        return self.path / self.page(page_id).image

    def image(self, page_id: str):
        """The page image as an RGB PIL image."""
        from PIL import Image

        with Image.open(self.image_path(page_id)) as im:
            return im.convert("RGB")

    def lines(self, page_id: str) -> list[Line]:
        path = self.path / "lines" / f"{self.page(page_id).id}.json"
        if not path.is_file():
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
        return [Line.from_dict(d) for d in data.get("lines", [])]

    def iter_lines(self) -> Iterator[Line]:
        for page in self.pages:
            yield from self.lines(page.id)

    def counts(self) -> dict:
        """Lines by status over all pages (from the manifest's per-page counts)."""
        total = Counter()
        for page in self.pages:
            total.update(page.counts)
        return {s: total.get(s, 0) for s in STATUSES}

    def crop_config(self):
        """The CropConfig chosen at import (`pages import --padding ...`)."""
        from .crop import CropConfig

        return CropConfig.from_dict(self.manifest.get("source", {}).get("crop", {}))

    def rejected(self) -> list[Reject]:
        path = self.path / REJECTED
        if not path.is_file():
            return []
        with open(path, newline="", encoding="utf-8") as fh:
            return [Reject(r["source"], r["where"], r["reason"]) for r in csv.DictReader(fh)]

    # -- writing ---------------------------------------------------------------------------------
    def save_lines(self, page_id: str, lines: list[Line]) -> None:
        """Replace a page's lines (atomic), then refresh that page's counts in the manifest."""
        page = self.page(page_id)
        for line in lines:
            if line.page != page.id:
                raise DatasetError(f"line {line.id} belongs to page {line.page!r}, not {page.id!r}")
        blob = _lines_blob(page.id, lines)
        (self.path / "lines").mkdir(exist_ok=True)
        write_json_atomic(self.path / "lines" / f"{page.id}.json", blob)
        self._pages[page.id] = dataclasses.replace(page, counts=_status_counts(lines))
        self.manifest.setdefault("lines_hashes", {})[page.id] = _hash_of(blob)
        self._write_manifest()

    def update_line(self, line_id: str, **changes: Any) -> Line:
        """Change one line's fields (e.g. ``text=..., status="verified"``) and save its page."""
        page_id = line_id.rsplit(":", 1)[0]
        lines = self.lines(page_id)
        for i, line in enumerate(lines):
            if line.id == line_id:
                lines[i] = line.replace(**changes)
                self.save_lines(page_id, lines)
                return lines[i]
        raise DatasetError(f"page {page_id!r} of {self.path} has no line {line_id!r}: "
                           "list its lines with DocumentSet.lines(page)")

    def set_tag(self, page_id: str, tag: Optional[str]) -> None:
        """Tag a page train/val/test (or None) for `to-dataset --split-by tag`."""
        if tag is not None and tag not in TAGS:
            raise DatasetError(f"page tag {tag!r} is not one of {TAGS}: use one of those or none")
        self._pages[page_id] = dataclasses.replace(self.page(page_id), tag=tag)
        self._write_manifest()

    def _write_manifest(self) -> None:
        self.manifest["pages"] = [p.to_dict() for p in self._pages.values()]
        self.manifest["counts"] = self.counts()
        self.manifest["total_lines"] = sum(self.manifest["counts"].values())
        hashes = self.manifest.get("lines_hashes", {})
        images = self.manifest.get("image_hashes", {})
        joined = "".join(f"{p.id}:{p.tag}:{hashes.get(p.id, '')}:{images.get(p.id, '')};" for p in self.pages)
        self.manifest["content_hash"] = hashlib.sha256(joined.encode("utf-8")).hexdigest()
        self.manifest["modified"] = now_iso()
        write_json_atomic(self.path / MANIFEST, self.manifest)

    def refresh(self) -> None:
        """Recompute every page's counts and hashes from its lines file (after a crash or hand edit)."""
        for page in self.pages:
            self.save_lines(page.id, self.lines(page.id))


class DocumentSetWriter:
    """Build a new document set atomically (hidden folder, renamed into place by close())."""

    def __init__(self, out: Union[str, Path], source: Optional[dict] = None, overwrite: bool = False):
        self.out = Path(out)
        if self.out.exists() and any(self.out.iterdir()):
            if not overwrite:
                raise DatasetError(f"{self.out} already exists and is not empty: choose a new folder or pass overwrite")
            if not is_document_set(self.out):
                raise DatasetError(f"{self.out} is not a document set: overwrite replaces only a document set "
                                   "or an empty folder; choose a new folder")
        src = (source or {}).get("path")
        if src:
            a, b = Path(src).resolve(), self.out.resolve()
            if a == b or a in b.parents or b in a.parents:
                raise DatasetError(f"{self.out} and its source {src} overlap (one holds the other): "
                                   "write the document set to a folder outside the source")
        self.overwrite = overwrite
        self.source = dict(source or {})
        self._tmp = partial_path(self.out)
        try:
            if self._tmp.exists():
                shutil.rmtree(self._tmp)
            (self._tmp / "pages").mkdir(parents=True)
            (self._tmp / "lines").mkdir()
        except OSError as exc:
            raise self._failed(exc) from None
        self.pages: dict[str, Page] = {}
        self.rejects: list[Reject] = []
        self._image_hashes: dict[str, str] = {}
        self._lines_hashes: dict[str, str] = {}
        self._closed = False

    def unique_id(self, wanted: str) -> str:
        """`wanted` made safe for a file name and unique among this set's pages."""
        base = "".join(c if c.isalnum() or c in "-_." else "_" for c in wanted).strip("._") or "page"
        candidate, n = base, 2
        while candidate in self.pages:
            candidate, n = f"{base}-{n}", n + 1
        return candidate

    def add_page(self, page_id: str, image_bytes: bytes, suffix: str, size: tuple[int, int],
                 document: str, lines: list[Line], source: str = "", tag: Optional[str] = None,
                 scale: float = 1.0) -> Page:
        """Store one page image (already encoded) and its lines; `page_id` from unique_id()."""
        if page_id in self.pages:
            raise DatasetError(f"page id {page_id!r} is used twice: get ids from unique_id()")
        image = f"pages/{page_id}{suffix}"
        blob = _lines_blob(page_id, lines)
        try:
            (self._tmp / image).write_bytes(image_bytes)
            write_json_atomic(self._tmp / "lines" / f"{page_id}.json", blob)
        except OSError as exc:
            raise self._failed(exc) from None
        page = Page(page_id, image, int(size[0]), int(size[1]), document, tag, source, scale,
                    _status_counts(lines))
        self.pages[page_id] = page
        self._image_hashes[page_id] = hashlib.sha256(image_bytes).hexdigest()
        self._lines_hashes[page_id] = _hash_of(blob)
        return page

    def reject(self, source: str, where: str, reason: str) -> None:
        self.rejects.append(Reject(str(source), str(where), reason))

    def close(self) -> Path:
        """Write manifest and rejected.csv, move the folder into place; error if no page was added."""
        if self._closed:
            return self.out
        if not self.pages:
            reasons = Counter(r.reason for r in self.rejects).most_common(3)
            self.abort()
            raise DatasetError(f"no usable pages for {self.out} ({len(self.rejects)} rejected"
                               + (f"; most common reasons: {reasons}" if reasons else "")
                               + "): fix the input and try again")
        manifest = {"format": FORMAT, "created": now_iso(), "source": self.source,
                    "image_hashes": self._image_hashes, "lines_hashes": self._lines_hashes,
                    "rejected": len(self.rejects)}
        try:
            write_json_atomic(self._tmp / MANIFEST, manifest)
            _write_rejects(self._tmp / REJECTED, self.rejects)
            docs = DocumentSet(self._tmp)
            docs._pages = dict(self.pages)
            docs._write_manifest()
            swap_into_place(self._tmp, self.out)
        except OSError as exc:  # from __exit__ too, which would not abort: the partial folder stayed
            raise self._failed(exc) from None
        except DatasetError:
            self.abort()
            raise
        self._closed = True
        return self.out

    def _failed(self, exc: OSError) -> DatasetError:
        """A failed write, after removing the partial folder: the error names the document set the
        user asked for (not the hidden ``.NAME.partial-PID`` it was built in) and the fix."""
        self.abort()  # first, so the message's free space counts what the partial folder held
        if is_disk_full(exc):
            return DatasetError(disk_full_message(self.out, exc, "writing the document set"))
        words = exc.strerror or str(exc)
        return DatasetError(f"cannot write the document set {self.out} ({words}): check the folder's permissions "
                            "and the disk, then run again; nothing was kept")

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._closed = True

    def __enter__(self) -> "DocumentSetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
