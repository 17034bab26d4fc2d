"""The report-error taxonomy: the one module that owns the ids (see ../shared/notes/reports.md).

Every other part of medmm (injector, checkers, metrics, app) imports these ids from here.
"""

from __future__ import annotations

from dataclasses import dataclass

INSERT, REMOVE, SUBSTITUTE = "insert", "remove", "substitute"
COMPLEX_CLASSES = (INSERT, REMOVE, SUBSTITUTE)


@dataclass(frozen=True)
class ErrorType:
    id: str
    description: str
    complex: str  # insert | remove | substitute (device can be either; its injector says which)
    text_visible: bool  # can text (and header) alone reveal it, without the image?


ERROR_TYPES: dict[str, ErrorType] = {t.id: t for t in (
    ErrorType("laterality", "left/right (or bilateral/unilateral) changed", SUBSTITUTE, True),
    ErrorType("negation", "a present finding stated absent, or an absent one stated present", SUBSTITUTE, True),
    ErrorType("measurement", "a size/value or its unit changed (5 mm -> 5 cm)", SUBSTITUTE, True),
    ErrorType("severity", "mild/moderate/severe, small/large changed", SUBSTITUTE, True),
    ErrorType("location", "anatomic location changed (other than side)", SUBSTITUTE, False),
    ErrorType("finding", "a different finding named in place of the true one", SUBSTITUTE, True),
    ErrorType("insertion", "a finding added that is not there", INSERT, False),
    ErrorType("omission", "a finding removed", REMOVE, False),
    ErrorType("contradiction", "findings and impression disagree", SUBSTITUTE, True),
    ErrorType("device", "device added, renamed or mispositioned", SUBSTITUTE, False),
    ErrorType("interval", "comparison/interval change wrong or referring to a prior that does not exist", SUBSTITUTE, True),
    ErrorType("transcription", "typo, homophone, repetition, dictation garbage", SUBSTITUTE, True),
    ErrorType("metadata", "report contradicts the DICOM header (modality, body part, laterality, sex, view)", SUBSTITUTE, True),
)}
TYPE_IDS: tuple[str, ...] = tuple(ERROR_TYPES)

# The kinds the must-show evaluation is about: what text and header can reveal.
TEXT_HEADER_TYPES = ("laterality", "negation", "measurement", "contradiction", "interval", "transcription", "metadata")


def complex_class(type_id: str) -> str:
    """The COMPLEX (insert/remove/substitute) class of a taxonomy id."""
    try:
        return ERROR_TYPES[type_id].complex
    except KeyError as exc:
        raise ValueError(f"unknown error type {type_id!r}; known: {', '.join(TYPE_IDS)}") from exc
