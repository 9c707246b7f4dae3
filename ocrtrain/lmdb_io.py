"""Reading and writing LMDBs in deep-text-recognition-benchmark's layout (the one lmdb import).

Layout: ``num-samples`` (ASCII int) and, for 1-based ``i``, ``image-%09d`` (encoded image bytes)
and ``label-%09d`` (UTF-8 text). Extra keys (``meta-*``) are allowed and ignored by DTRB tools.
The map starts small and doubles when full, so no huge sparse file is created.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> with LmdbWriter(os.path.join(d, "x")) as w:
...     _ = w.add(b"png-bytes", "hei")
>>> r = LmdbReader(os.path.join(d, "x")); len(r), r.label(0)
(1, 'hei')
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Iterator, Optional, Union

import lmdb

from .diskspace import disk_full_message, is_disk_full
from .errors import DatasetError

__all__ = ["LmdbWriter", "LmdbReader", "is_lmdb", "parse_num_samples"]

_INITIAL_MAP = 16 * 1024 * 1024

# py-lmdb refuses to open the same LMDB files twice in one process ("already open in this
# process"), and a forked child inherits that bookkeeping. So read-only environments are shared
# per (process, data file) and counted; a child closes what it inherited before reopening.
_ENVS: dict[tuple, list] = {}
_ENVS_LOCK = threading.Lock()


def _reset_lock_after_fork() -> None:
    global _ENVS_LOCK
    _ENVS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_after_fork)


def _acquire_env(path: Path) -> tuple[tuple, "lmdb.Environment"]:
    st = os.stat(path / "data.mdb")
    pid = os.getpid()
    key = (pid, st.st_dev, st.st_ino)
    with _ENVS_LOCK:
        for k in [k for k in _ENVS if k[0] != pid]:
            inherited = _ENVS.pop(k)[0]
            try:
                inherited.close()  # in a child this only drops the parent's handle here
            except Exception:  # pragma: no cover - best effort on an unusable handle
                pass
        entry = _ENVS.get(key)
        if entry is None:
            env = _open_checked(path)
            entry = _ENVS[key] = [env, 0]
        entry[1] += 1
        return key, entry[0]


def _open_checked(path: Path) -> "lmdb.Environment":
    """Open read-only, refusing a data file shorter than its own last page.

    LMDB maps the file and reads pages straight from memory: a page past the end of a truncated
    file is a bus error (SIGBUS) that kills the process with no message, so check first.
    """
    data = path / "data.mdb"
    try:
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=False,
                        meminit=False, max_readers=256)
    except lmdb.Error as exc:
        raise DatasetError(f"{data} cannot be opened as an LMDB ({exc}): the file is damaged or not an "
                           "LMDB; re-create it (ocrtrain synth / ocrtrain import)") from None
    needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    size = os.stat(data).st_size
    if size < needed:
        env.close()
        raise DatasetError(f"{data} is truncated: {size:,} bytes, but its pages need {needed:,} "
                           "(an interrupted copy or download?): copy it again or re-create the dataset")
    return env


def parse_num_samples(raw: Optional[bytes], where: Union[str, Path]) -> int:
    """The sample count stored under ``num-samples``; DatasetError when missing or not a count."""
    if raw is None:
        raise DatasetError(
            f"{where} has no 'num-samples' key (an interrupted write?): regenerate or re-import it"
        )
    text = bytes(raw).decode("ascii", "replace").strip()
    if not text.isdigit() or len(text) > 12:
        raise DatasetError(f"{where}: 'num-samples' is {text[:40]!r}, not a count of samples (0 or more): "
                           "the LMDB is damaged; re-create it")
    return int(text)


def _release_env(key: tuple) -> None:
    with _ENVS_LOCK:
        entry = _ENVS.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del _ENVS[key]
            entry[0].close()


def is_lmdb(path: Union[str, Path]) -> bool:
    """True when `path` is a folder holding an LMDB data file."""
    return (Path(path) / "data.mdb").is_file()


class LmdbWriter:
    """Append samples to a new LMDB; call :meth:`close` (or use ``with``) to write ``num-samples``."""

    def __init__(self, path: Union[str, Path], commit_every: int = 256):
        self.path = Path(path)
        if is_lmdb(self.path):
            raise DatasetError(f"{self.path} already holds an LMDB: choose a new folder or delete it")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._env = lmdb.open(str(self.path), map_size=_INITIAL_MAP, subdir=True, lock=True)
        except (OSError, lmdb.Error) as exc:
            raise self._write_error(exc) from None
        self._pending: dict[bytes, bytes] = {}
        self._commit_every = commit_every
        self.count = 0
        self._meta: dict[str, bytes] = {}

    def add(self, image: bytes, label: str) -> int:
        """Append one sample; returns its 0-based index."""
        self.count += 1
        self._pending[b"image-%09d" % self.count] = bytes(image)
        self._pending[b"label-%09d" % self.count] = label.encode("utf-8")
        if len(self._pending) >= 2 * self._commit_every:
            self._flush()
        return self.count - 1

    def set_meta(self, key: str, value) -> None:
        """Store a JSON value under ``meta-<key>``."""
        self._meta[f"meta-{key}"] = json.dumps(value, ensure_ascii=False).encode("utf-8")

    def _flush(self, final: bool = False) -> None:
        items = dict(self._pending)
        if final:
            items[b"num-samples"] = str(self.count).encode()
            items.update({k.encode(): v for k, v in self._meta.items()})
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    for k, v in items.items():
                        txn.put(k, v)
                break
            except lmdb.MapFullError:
                self._env.set_mapsize(self._env.info()["map_size"] * 2)
            except (OSError, lmdb.Error) as exc:
                raise self._write_error(exc) from None
        self._pending.clear()

    def _write_error(self, exc: BaseException) -> DatasetError:
        """A failed write as DatasetError; LMDB reports a full disk as an I/O error."""
        if is_disk_full(exc):
            return DatasetError(disk_full_message(self.path, exc))
        return DatasetError(f"cannot write the LMDB {self.path} ({exc}): check the disk and the folder's "
                            "permissions, then run again; nothing was kept")

    def close(self) -> None:
        if self._env is None:
            return
        self._flush(final=True)
        try:
            self._env.sync()
        except (OSError, lmdb.Error) as exc:
            raise self._write_error(exc) from None
        finally:
            self._env.close()
            self._env = None

    def abort(self) -> None:
        """Close without writing ``num-samples`` (the LMDB then reads as incomplete)."""
        if self._env is not None:
            self._env.close()
            self._env = None

    def __enter__(self) -> "LmdbWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class LmdbReader:
    """Random access to a DTRB-layout LMDB; opens lazily and reopens in each worker process.

    `strict` (the default) refuses an LMDB whose ``num-samples`` claims more samples than it
    holds keys for; the importer opens with ``strict=False`` and walks the keys present.
    """

    def __init__(self, path: Union[str, Path], strict: bool = True):
        self.path = Path(path)
        if not is_lmdb(self.path):
            raise DatasetError(
                f"{self.path} is not an LMDB (no data.mdb): give a dataset split folder such as DATASET/train"
            )
        self._env = None
        self._pid: Optional[int] = None
        self._key: Optional[tuple] = None
        env = self._open()
        try:
            with env.begin() as txn:
                raw = txn.get(b"num-samples")
            self._len = parse_num_samples(raw, self.path)
            #: Keys actually stored; a DTRB LMDB holds 2 per sample (image, label) + num-samples.
            self.entries = int(env.stat()["entries"])
        except BaseException:
            self.close()
            raise
        if strict and self.entries < 2 * self._len + 1:
            self.close()
            raise DatasetError(
                f"{self.path} claims {self._len:,} samples in 'num-samples' but holds only {self.entries:,} "
                f"keys (room for {max(0, (self.entries - 1) // 2):,}): the LMDB is damaged; re-create it, "
                "or import it with `ocrtrain import` (which keeps the samples present)")

    def _open(self):
        if self._env is None or self._pid != os.getpid():
            self._key, self._env = _acquire_env(self.path)
            self._pid = os.getpid()
        return self._env

    def __len__(self) -> int:
        return self._len

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_env"] = None
        state["_pid"] = None
        state["_key"] = None
        return state

    def _get(self, key: bytes) -> bytes:
        with self._open().begin() as txn:
            value = txn.get(key)
        if value is None:
            raise DatasetError(f"{self.path}: key {key.decode()} is missing: the LMDB is damaged, re-create it")
        return bytes(value)

    def _check(self, index: int) -> int:
        if not 0 <= index < self._len:
            raise IndexError(f"sample {index} out of range 0..{self._len - 1} in {self.path}")
        return index + 1

    def image_bytes(self, index: int) -> bytes:
        return self._get(b"image-%09d" % self._check(index))

    def label(self, index: int) -> str:
        return self._get(b"label-%09d" % self._check(index)).decode("utf-8")

    def __getitem__(self, index: int) -> tuple[bytes, str]:
        return self.image_bytes(index), self.label(index)

    def labels(self) -> Iterator[str]:
        for i in range(self._len):
            yield self.label(i)

    def present_indices(self) -> Iterator[int]:
        """0-based indices that have a ``label-`` key, in order (bounded by the keys stored, not
        by what ``num-samples`` claims)."""
        with self._open().begin() as txn:
            cursor = txn.cursor()
            if not cursor.set_range(b"label-"):
                return
            for key in cursor.iternext(keys=True, values=False):
                key = bytes(key)
                if not key.startswith(b"label-"):
                    break
                digits = key[6:]
                if digits.isdigit() and 1 <= int(digits) <= self._len:
                    yield int(digits) - 1

    def meta(self, key: str, default=None):
        with self._open().begin() as txn:
            raw = txn.get(f"meta-{key}".encode())
        return default if raw is None else json.loads(bytes(raw).decode("utf-8"))

    def close(self) -> None:
        if self._env is not None and self._pid == os.getpid():
            _release_env(self._key)
        self._env = None
        self._key = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
