"""The one error hierarchy of ocrtrain: every message says what, where and the fix."""
from __future__ import annotations

__all__ = [
    "OcrtrainError",
    "ConfigError",
    "DatasetError",
    "DiskFullError",
    "InputError",
    "ModelError",
    "RunError",
]


class OcrtrainError(Exception):
    """Base of every error ocrtrain raises on purpose."""


class ConfigError(OcrtrainError, ValueError):
    """A configuration value or key is invalid."""


class DatasetError(OcrtrainError):
    """A dataset folder or LMDB is missing, empty or inconsistent."""


class InputError(OcrtrainError):
    """A user-provided file (word list, CSV, labels, image, zip) cannot be used."""


class ModelError(OcrtrainError):
    """A model file, checkpoint or architecture does not fit."""


class RunError(OcrtrainError):
    """A run folder or job is in a state that does not allow the request."""


class DiskFullError(OcrtrainError, OSError):
    """A write found no room (ENOSPC, a quota, a file-size limit); the message names the file and the fix.

    An OSError too (same errno), so code that handles failed writes keeps handling it.
    """

    def __init__(self, message: str, errno: int = 28, filename: object = None):
        OSError.__init__(self, errno, message)
        self.message = message
        self.filename = filename

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return type(self), (self.message, self.errno, self.filename)
