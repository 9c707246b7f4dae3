"""Safe extraction of an import .zip into a temporary folder (paths, links, bombs, a full disk).

Unsafe entries (absolute paths, ``..``, links, encryption) are skipped and reported. Sizes are
checked before anything is written: the archive's declared total against the cap and the free
space, each member against its own cap, and the bytes actually inflated are counted as they are
written (headers can lie), stopping at the cap. A full disk stops the import with a "disk full"
error: a partial extraction is never imported as if it were the whole archive. The error names
the temporary folder (TMPDIR), not the extraction folder inside it, which is gone by the time it
is read.

>>> # rejected = extract_zip_safely("receipts.zip", make_temp_dir())
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Optional, Union

from .dataset import Rejected
from .diskspace import disk_full_message, free_bytes, is_disk_full
from .errors import DatasetError, InputError
from .jobs import pid_alive

__all__ = ["DEFAULT_MAX_ZIP_BYTES", "IMAGE_SUFFIXES", "extract_zip_safely", "make_temp_dir",
           "clean_stale_temp_dirs"]

#: Default cap on what an archive may unpack to: far above a set of line crops, far below a disk.
DEFAULT_MAX_ZIP_BYTES = 1_000_000_000
#: File suffixes treated as images (their members are capped at the image size limit).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")
#: Labels files larger than this are not text-line labels (a million lines take about 40 MB).
MAX_LABELS_FILE_BYTES = 256_000_000
#: A member this much smaller packed than unpacked is refused unread (only long runs of one byte
#: compress that well; images and LMDB pages do not), once it unpacks to over _RATIO_FLOOR bytes.
MAX_RATIO = 200
_RATIO_FLOOR = 10_000_000
_TEMP_PREFIX = "ocrtrain-import-"
_TMPDIR_FIX = "to extract on another disk, set TMPDIR to a folder on a disk with room"
_CHUNK = 1 << 20


def make_temp_dir() -> Path:
    """A new extraction folder named with this process's id, after removing those of dead processes."""
    clean_stale_temp_dirs()
    return Path(tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-"))


def clean_stale_temp_dirs(folder: Optional[Union[str, Path]] = None) -> list[Path]:
    """Delete ``ocrtrain-import-PID-*`` folders in `folder` (the temp folder) whose process is gone."""
    folder = Path(folder or tempfile.gettempdir())
    removed = []
    pattern = re.compile(rf"^{re.escape(_TEMP_PREFIX)}(\d+)-")
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = pattern.match(p.name)
        if m and p.is_dir() and not p.is_symlink() and not pid_alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _zip_entry_problem(info: zipfile.ZipInfo) -> Optional[str]:
    """Why an entry must not be extracted, or None when it is safe."""
    name = info.filename.replace("\\", "/")
    mode = info.external_attr >> 16
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "has an absolute path, which would write outside the target: store relative paths"
    if any(part == ".." for part in name.split("/")):
        return "has '..' in its path, which would write outside the target: store paths inside the archive"
    if stat.S_ISLNK(mode):
        return "is a symbolic link, which could point outside the archive: store the file itself"
    # Many zip writers store permission bits only (file type 0); that is an ordinary file.
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "is not a regular file or folder: store plain files only"
    if info.flag_bits & 0x1:
        return "is encrypted: store it without a password"
    return None


def _is_junk(name: str) -> bool:
    # Finder adds resource forks and .DS_Store to every zip it makes; they are never samples.
    parts = name.replace("\\", "/").split("/")
    return "__MACOSX" in parts or parts[-1] == ".DS_Store" or parts[-1].startswith("._")


class _WriteFailed(Exception):
    """A member could not be written (`exc`); raised up to extract_zip_safely, which removes what
    it extracted first, so the message's free space is the room the user has once it is gone."""

    def __init__(self, name: str, exc: OSError):
        super().__init__(name)
        self.name, self.exc = name, exc


class _Extraction:
    """State of one extraction: the running byte count and the caps."""

    def __init__(self, archive: Path, root: Path, max_bytes: int, max_member_bytes: int):
        self.archive, self.root = archive, root
        self.max_bytes, self.max_member_bytes = max_bytes, max_member_bytes
        self.written = 0

    def member_cap(self, name: str) -> tuple[int, str]:
        """The most one member may unpack to, and the limit's name: an LMDB's pages may fill the
        archive, a labels file is text, and anything else (images, stray files) is one image."""
        base = name.lower().rsplit("/", 1)[-1]
        if base in ("data.mdb", "lock.mdb"):
            return self.max_bytes, "max_zip_bytes"
        if base.endswith((".txt", ".csv")):
            return min(MAX_LABELS_FILE_BYTES, self.max_bytes), "the labels file limit"
        return self.max_member_bytes, "max_image_bytes"

    def too_big(self, name: str, size: int) -> Optional[str]:
        cap, what = self.member_cap(name)
        if size > cap:
            return (f"unpacks to more than {cap:,} bytes, over {what} (a zip bomb?): "
                    "store the real file or raise the limit")
        return None

    def check_member(self, info: zipfile.ZipInfo, name: str) -> Optional[str]:
        """Why a member must not be written, judged on its header alone (before writing a byte)."""
        size = info.file_size
        if size > _RATIO_FLOOR and size > MAX_RATIO * max(1, info.compress_size):
            return (f"unpacks {info.compress_size:,} bytes to {size:,} (over {MAX_RATIO}:1, a zip bomb?): "
                    "store the real file")
        return self.too_big(name, size)

    def shown(self) -> tuple[Path, str]:
        """The folder a message names, and what it is: the temporary folder (TMPDIR) for an
        extraction folder of ours (the import deletes that before the user reads the message),
        else the target itself."""
        if self.root.name.startswith(_TEMP_PREFIX):
            return self.root.parent, "the temporary folder "
        return self.root, ""

    def write_error(self, failed: _WriteFailed) -> Exception:
        where, what = self.shown()
        if is_disk_full(failed.exc):
            return DatasetError(disk_full_message(
                where, failed.exc, doing=f"extracting {self.archive.name} into {what}".rstrip(),
                kept=f"nothing was imported ({_TMPDIR_FIX})"))
        reason = failed.exc.strerror or failed.exc
        return DatasetError(f"cannot write {failed.name!r} into {what}{where} while extracting {self.archive.name} "
                            f"({reason}): check that folder and its permissions, or {_TMPDIR_FIX}; "
                            "nothing was imported")

    def copy(self, src: BinaryIO, out: BinaryIO, name: str) -> Optional[str]:
        """Copy one member, counting inflated bytes; the reason when it must be dropped, else None."""
        member = 0
        cap, _ = self.member_cap(name)
        while True:
            try:
                chunk = src.read(_CHUNK)
            except (zipfile.BadZipFile, NotImplementedError, EOFError, ValueError, zlib.error, OSError) as exc:
                return f"cannot be read ({exc}): re-create the archive"
            if not chunk:
                return None
            member += len(chunk)
            self.written += len(chunk)
            if self.written > self.max_bytes:
                raise InputError(f"{self.archive} unpacks to more than {self.max_bytes:,} bytes (a zip bomb?): "
                                 "split the archive or raise max_zip_bytes")
            if member > cap:
                return self.too_big(name, member)
            try:
                out.write(chunk)
            except OSError as exc:
                raise _WriteFailed(name, exc) from None


def _check_totals(archive: Path, infos: list, state: _Extraction, max_entries: int) -> None:
    max_bytes = state.max_bytes
    if len(infos) > max_entries:
        raise InputError(f"{archive} has {len(infos):,} entries, over the limit of {max_entries:,} "
                         "(a zip bomb?): split the archive or raise max_zip_entries")
    declared = sum(i.file_size for i in infos)
    if declared > max_bytes:
        raise InputError(f"{archive} unpacks to {declared:,} bytes, over the limit of {max_bytes:,} "
                         "(a zip bomb?): split the archive or raise max_zip_bytes")
    where, what = state.shown()
    free = free_bytes(where)
    if free is not None and declared > free:
        raise DatasetError(f"disk full: {archive} unpacks to {declared:,} bytes but {what}{where} has only "
                           f"{free:,} bytes free: free space there or set TMPDIR to a folder on a disk with "
                           "room; nothing was imported")


def extract_zip_safely(archive: Union[str, Path], target: Union[str, Path],
                       max_bytes: int = DEFAULT_MAX_ZIP_BYTES, max_entries: int = 1_000_000,
                       max_member_bytes: Optional[int] = None) -> list[Rejected]:
    """Extract `archive` into `target`, skipping unsafe entries; returns one Rejected per skipped entry.

    Entries with absolute paths, ``..``, symbolic links or encryption are not written, nor images
    over `max_member_bytes`. An archive with more than `max_entries` entries or more than
    `max_bytes` uncompressed (a zip bomb) is refused as a whole with InputError; a full disk
    raises DatasetError saying "disk full".
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    state = _Extraction(archive, root, max_bytes, max_member_bytes or max_bytes)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{archive} is not a readable zip ({exc}): re-create the archive") from None
    there = set(os.listdir(root))
    with zf:
        infos = zf.infolist()
        _check_totals(archive, infos, state, max_entries)
        try:
            return _extract_all(zf, infos, state)
        except _WriteFailed as failed:
            _remove_new(root, there)
            raise state.write_error(failed) from None


def _remove_new(root: Path, there: set) -> None:
    """Remove what the extraction added to `root` (entries not in `there`): a partial extraction is
    never used, and the free space a message reports is then the room the user really has."""
    for name in set(os.listdir(root)) - there:
        p = root / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _extract_all(zf: zipfile.ZipFile, infos: list, state: _Extraction) -> list[Rejected]:
    archive, root = state.archive, state.root
    rejected: list[Rejected] = []
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if _is_junk(name):
            continue
        clean = name.replace("\\", "/").strip("/")
        problem = _zip_entry_problem(info)
        if problem is None and clean in seen:
            problem = "appears twice in the archive: keep one copy"
        dest = (root / clean).resolve() if clean else root
        if problem is None and dest != root and root not in dest.parents:
            problem = "would be written outside the target folder: store paths inside the archive"
        if problem is None and not info.is_dir():
            problem = state.check_member(info, clean)  # before writing a byte
        if problem is None:
            seen.add(clean)
            problem = _extract_one(zf, info, dest, clean, state)
        if problem:
            rejected.append(Rejected(name, "", f"zip entry {name!r} in {archive.name} {problem}"))
    return rejected


def _extract_one(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, clean: str,
                 state: _Extraction) -> Optional[str]:
    try:
        if info.is_dir() or not clean:
            dest.mkdir(parents=True, exist_ok=True)
            return None
        dest.parent.mkdir(parents=True, exist_ok=True)
        out = open(dest, "wb")
    except OSError as exc:
        raise _WriteFailed(clean, exc) from None
    try:
        src = zf.open(info)
    except (zipfile.BadZipFile, NotImplementedError, EOFError, ValueError, zlib.error, OSError) as exc:
        out.close()
        dest.unlink(missing_ok=True)
        return f"cannot be read ({exc}): re-create the archive"
    try:
        with src, out:
            problem = state.copy(src, out, clean)
    except OSError as exc:  # closing (flushing) the file can be the write that hits a full disk
        dest.unlink(missing_ok=True)
        raise _WriteFailed(clean, exc) from None
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    if problem:
        dest.unlink(missing_ok=True)
    return problem
