"""The one error family of medmm.

Every error raised on bad input is a :class:`MedmmError` whose message is written for the
person at the keyboard: what is wrong, with which file, and what to do about it. Messages
never contain patient data (names, IDs, dates, report text); they may name a file path,
a DICOM tag and a UID-free description of the problem.
"""

from __future__ import annotations


class MedmmError(Exception):
    """Base class of every error medmm raises on purpose."""


class InputError(MedmmError):
    """A file or folder given by the user cannot be used (missing, empty, wrong kind)."""


class NotDicomError(InputError):
    """The file is not DICOM (no preamble and no plausible first element)."""


class DicomReadError(InputError):
    """A DICOM file is corrupt or truncated, or lacks an element that is needed."""


class DecodeError(InputError):
    """Pixel data could not be decoded (unsupported transfer syntax, corrupt stream)."""


class PixelBudgetError(InputError):
    """Decoding would allocate more voxels than the configured pixel budget."""


class SeriesGeometryError(InputError):
    """A series cannot be made into one regular volume without hiding a problem."""


class ConfigError(MedmmError):
    """A configuration value or file is invalid."""
