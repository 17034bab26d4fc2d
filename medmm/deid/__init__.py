"""medmm.deid (L1, beside imaging): DICOM de-identification by the PS3.15 Annex E Basic Application
Level Confidentiality Profile applied as an allow-list (table and allow-list shipped as package data),
on datasets, files and trees, and report-text scrubbing.

Library entry points for other layers (the app's Check-now uploads, ``medmm export --deid-text``):
:func:`deid_tree` (a file or folder in, de-identified copies out) and :func:`scrub_text`.
"""

from __future__ import annotations

from medmm._lazy import lazy_exports

_EXPORTS = {
    "DeidKey": "medmm.deid.keys", "keyed_hash": "medmm.deid.keys",
    "DeidOptions": "medmm.deid.core", "DeidNotes": "medmm.deid.core", "deid_dataset": "medmm.deid.core",
    "BurnedInAnnotationError": "medmm.deid.core", "burned_in_reason": "medmm.deid.core",
    "EncapsulatedDocumentError": "medmm.deid.core", "load_allowlist": "medmm.deid.allowlist",
    "strip_codestream_metadata": "medmm.deid.pixels", "load_or_create_key_file": "medmm.deid.keys",
    "DeidSummary": "medmm.deid.tree", "deid_file": "medmm.deid.tree", "deid_tree": "medmm.deid.tree",
    "scrub_text": "medmm.deid.text", "find_phi": "medmm.deid.text", "ScrubResult": "medmm.deid.text",
    "PhiSpan": "medmm.deid.text", "load_table": "medmm.deid.table", "Table": "medmm.deid.table",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports("medmm.deid", _EXPORTS, globals())
