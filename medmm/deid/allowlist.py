"""The allow-list: the attributes a de-identified file may keep besides those Table E.1-1 replaces.

Table E.1-1 lists what to remove or replace and keeps *everything else*, so an attribute the table does
not name — a vendor's text in a public tag, a UID such as SOPInstanceUIDOfConcatenationSource, an
overlay's description, a code sequence naming the operator — went through untouched (issue 20, N10).
medmm turns that around: an attribute leaves only if the table replaces it (D, Z, U, shifted dates)
or it is on this list; everything else — unlisted, retired, private (unless kept by option), file meta
(rebuilt by the writer) — is removed.

What is on the list (``safe_attributes.json``, package data, built by :func:`build_allowlist` from the
DICOM data dictionary that pydicom ships, so it can be regenerated and reviewed):

- attributes that cannot carry free text: numbers (US, SS, UL, SL, FL, FD, DS, IS, AT, SV, UV and the
  numeric arrays OF, OD, OL, OV), coded strings (CS: at most 16 upper-case letters, digits, space and
  underscore — checked value by value when a file is cleaned), and sequences (kept as containers only:
  every item is cleaned by the same rules);
- UIDs (UI): a UID that names something in the DICOM registry (a SOP class, a transfer syntax, a
  coding scheme) is kept; any other UID is replaced by its keyed pseudonym, like the table's ``U``;
- a short reviewed list of text attributes that describe the equipment, the acquisition or a code,
  never a person (:data:`TEXT_KEEP`), and the pixel, LUT and waveform data elements (:data:`DATA_KEEP`);
- never from the groups that hold people, visits, procedure steps, storage media or signatures
  (:data:`EXCLUDED_GROUPS`), except :data:`GROUP_0040_KEEP`; never a retired attribute; never a
  repeating group (curves 50xx and overlays 60xx: removed whole, overlay text with them).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

ALLOWLIST_FILE = "safe_attributes.json"
NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "DS", "IS", "AT", "SV", "UV", "OF", "OD", "OL", "OV",
                         "US or SS"})
EXCLUDED_GROUPS = frozenset({
    0x0000,  # command
    0x0002,  # file meta: rebuilt by the writer
    0x0004,  # media directory
    0x0010,  # patient (what the table names is handled by the table; nothing else is kept)
    0x0012,  # clinical trial
    0x0032,  # study (retired scheduling, requests)
    0x0038,  # visit / admission
    0x0040,  # procedure steps, requests, SR content items (see GROUP_0040_KEEP)
    0x0088,  # storage media
    0x0400,  # digital signatures, original attributes
    0x2200,  # media creation
    0x4000, 0x4008,  # text, interpretation (retired)
    0xFFFA, 0xFFFC, 0xFFFE,
})
GROUP_0040_KEEP = frozenset({  # quantitative mapping needed to read PET/MR values, no text
    "RealWorldValueMappingSequence", "RealWorldValueFirstValueMapped", "RealWorldValueLastValueMapped",
    "RealWorldValueIntercept", "RealWorldValueSlope", "RealWorldValueLUTData", "MeasurementUnitsCodeSequence",
    "DoubleFloatRealWorldValueFirstValueMapped", "DoubleFloatRealWorldValueLastValueMapped",
})
TEXT_KEEP = frozenset({  # reviewed: they name equipment, a code or a display option, not a person or a place
    "Manufacturer", "ManufacturerModelName", "SoftwareVersions", "ConvolutionKernel", "SequenceName",
    "PulseSequenceName", "ReceiveCoilName", "TransmitCoilName", "ImagedNucleus", "FilterType", "FilterMaterial",
    "WindowCenterWidthExplanation", "LUTExplanation", "LUTLabel", "CodeValue", "CodingSchemeDesignator",
    "CodingSchemeVersion", "CodeMeaning", "LongCodeValue", "URNCodeValue", "ContextIdentifier", "MappingResource",
    "ContextGroupExtensionCreatorUID", "ContrastBolusRoute", "ProcessingFunction", "CollimatorGridName",
    "DetectorManufacturerName", "DetectorManufacturerModelName", "MultiCoilElementName",
    "ApplicationVersion", "MappingResourceName", "CodingSchemeName",
    "SegmentLabel", "SegmentAlgorithmName",  # Type 1 in a segmentation: an anatomy or algorithm name
})
DATA_KEEP = frozenset({
    "PixelData", "FloatPixelData", "DoubleFloatPixelData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths",
    "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
    "AlphaPaletteColorLookupTableData", "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData", "SegmentedBluePaletteColorLookupTableData",
    "SegmentedAlphaPaletteColorLookupTableData", "LUTData", "ICCProfile", "WaveformData", "SpectroscopyData",
    "PixelPaddingValue",
})
CS_VALUE = re.compile(r"[A-Z0-9 _]{0,16}")


def _rule_keeps(tag: int, vr: str, keyword: str, retired: str, table_tags: set[int]) -> str | None:
    """Why the rules keep an attribute ('number', 'code', 'uid', 'sequence', 'text', 'data'), or None."""
    if retired or not keyword or tag in table_tags:
        return None
    group = tag >> 16
    if group & 1 or group in (0x5000, 0x6000):
        return None
    if group in EXCLUDED_GROUPS and not (group == 0x0040 and keyword in GROUP_0040_KEEP):
        return None
    if keyword in DATA_KEEP:
        return "data"
    if keyword in TEXT_KEEP:
        return "text"
    if vr in NUMERIC_VRS:
        return "number"
    if vr == "CS":
        return "code"
    if vr == "UI":
        return "uid"
    if vr == "SQ":
        return "sequence"
    return None


def build_allowlist(source: str) -> dict[str, Any]:
    """The package-data JSON from pydicom's data dictionary and the table (see the module docstring).

    ``json.dump(build_allowlist("pydicom <version> data dictionary"), open(ALLOWLIST_FILE, "w"), indent=0)``.
    """
    from pydicom.datadict import DicomDictionary

    from medmm.deid.table import load_table

    table_tags = set(load_table().exact)
    rows = []
    for tag, (vr, _vm, _name, retired, keyword) in sorted(DicomDictionary.items()):
        why = _rule_keeps(int(tag), vr, keyword, retired, table_tags)
        if why:
            rows.append([f"{int(tag):08X}", keyword, why])
    return {
        "source": source,
        "rules": "medmm.deid.allowlist: numbers, coded strings, sequences (cleaned item by item), UIDs "
                 "(registry UIDs kept, others replaced), reviewed equipment/code text, pixel/LUT/waveform data; "
                 "never retired, private, repeating groups or the excluded groups; never a Table E.1-1 attribute",
        "attributes": rows,
    }


@lru_cache(maxsize=1)
def load_allowlist() -> dict[int, str]:
    """tag -> why it is kept ('number', 'code', 'uid', 'sequence', 'text', 'data')."""
    raw = json.loads(resources.files("medmm.deid").joinpath(ALLOWLIST_FILE).read_text(encoding="utf-8"))
    return {int(tag, 16): why for tag, _keyword, why in raw["attributes"]}
