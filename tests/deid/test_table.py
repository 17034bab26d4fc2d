"""Every attribute of PS3.15 Table E.1-1 gets its action, at the top level and inside a sequence.

The expected result of each action is written here from the standard's definitions (X removed,
Z empty, D a non-empty dummy different from the original, U the keyed new UID, C dates shifted
under 113107), not read back from medmm's implementation.
"""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources

import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medmm.deid import DeidKey, DeidOptions, deid_dataset, load_table
from medmm.deid.core import EncapsulatedDocumentError

# D over Z over X where the profile leaves the choice (documented in medmm/deid/table.py)
RESOLVED = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "U*"}
CONTAINER = 0x52009229  # Shared Functional Groups Sequence: not in the table, so its items are cleaned
KEY = DeidKey.from_seed("table-test")
TABLE = load_table()
EXACT = [r for r in TABLE.rules if all(c in "0123456789ABCDEF" for c in r.tag) and not r.tag.startswith("0002")]

VALUES = {
    "AE": "SECRETAE", "AS": "045Y", "CS": "SECRETCS", "DA": "20240105", "DT": "20240105123000", "TM": "123000",
    "DS": "12.5", "IS": "42", "LO": "SECRET LO VALUE", "LT": "SECRET LT VALUE", "SH": "SECRET SH VAL",
    "ST": "SECRET ST VALUE", "UT": "SECRET UT VALUE", "UC": "SECRET UC VALUE", "PN": "SECRET^PERSON",
    "UI": "1.2.3.4.5.6789", "UR": "http://secret.example/x", "US": 7, "OB": b"SECRETOB", "UN": b"SECRETUN",
}


def _value(vr: str):
    if vr == "SQ":
        inner = Dataset()
        inner.PatientName = "SECRET^NESTED"
        return Sequence([inner])
    return VALUES[vr]


def _dataset(tag: int, nested: bool) -> tuple[Dataset, Dataset]:
    """(dataset to de-identify, the dataset that holds the attribute)."""
    ds = Dataset()
    ds.PatientID = "PID-1"
    holder = ds
    if nested:
        holder = Dataset()
        ds.add_new(CONTAINER, "SQ", Sequence([holder]))
    vr = dictionary_VR(tag)
    holder.add_new(tag, vr, _value(vr))
    return ds, holder


def _empty(value) -> bool:
    return value in (None, "", b"") or (isinstance(value, Sequence) and len(value) == 0)


def _check(rule, holder: Dataset, tag: int, action: str, days: int) -> None:
    vr = dictionary_VR(tag)
    original = _value(vr)
    where = f"{rule.tag} {rule.keyword} ({rule.action} -> {action})"
    if action == "X":
        assert tag not in holder, where
        return
    assert tag in holder, where
    value = holder[tag].value
    if action == "Z":
        assert _empty(value), where
    elif action == "K":
        assert value == original or (vr == "SQ" and _empty(value[0].PatientName)), where
    elif vr == "SQ" and action == "D":  # D on a sequence: an empty sequence, no original item (issue 20, N10)
        assert len(value) == 0, where
    elif vr == "SQ":  # U* on a sequence: kept, every item cleaned
        assert len(value) == 1 and _empty(value[0].get("PatientName")), where
    elif action == "D":
        assert not _empty(value) and value != original, where
        assert "SECRET" not in str(value), where
    elif action == "U":
        assert value == KEY.uid(original) and value.startswith("2.25."), where
    elif action == "shift":
        shifted = dt.date(2024, 1, 5) + dt.timedelta(days=days)
        assert str(value) == shifted.strftime("%Y%m%d") + str(original)[8:], where
    else:
        raise AssertionError(f"unexpected action {action} for {where}")


def _expected(rule, vr: str, shifted: bool) -> str:
    if shifted and rule.options.get("rtnLongModifDatesOpt") == "C":
        if vr in ("DA", "DT"):
            return "shift"
        if vr == "TM":
            return "K"
    return RESOLVED.get(rule.action, rule.action)


def test_table_is_the_whole_profile_with_its_source():
    raw = json.loads(resources.files("medmm.deid").joinpath("ps3.15_annex_e.json").read_text())
    assert "Table E.1-1" in raw["source"] and "MIT" in raw["licence"]
    assert len(TABLE.rules) == len(raw["attributes"]) > 600
    assert {r.action for r in TABLE.rules} <= {"D", "Z", "X", "K", "C", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"}
    by_keyword = {r.keyword: r.action for r in TABLE.rules}
    assert by_keyword["PatientName"] == "Z" and by_keyword["StudyInstanceUID"] == "U"
    assert by_keyword["PatientBirthDate"] == "Z" and by_keyword["AccessionNumber"] == "Z"
    assert CONTAINER not in TABLE.exact
    for rule in EXACT:
        assert dictionary_VR(int(rule.tag, 16)) in (*VALUES, "SQ"), rule


@pytest.mark.parametrize("nested", [False, True], ids=["top-level", "in-sequence"])
@pytest.mark.parametrize("shifted", [False, True], ids=["basic", "dates-shifted"])
def test_every_attribute_gets_its_action(nested, shifted):
    options = DeidOptions(keep_dates_shifted=shifted)
    days = KEY.day_offset("PatientID:PID-1")
    assert -3650 <= days <= -1
    for rule in EXACT:
        tag = int(rule.tag, 16)
        ds, holder = _dataset(tag, nested)
        if rule.keyword == "EncapsulatedDocument" and not nested:  # a document is refused whole (issue 20, N10)
            with pytest.raises(EncapsulatedDocumentError):
                deid_dataset(ds, KEY, options)
            continue
        deid_dataset(ds, KEY, options)
        if nested:
            holder = ds[CONTAINER].value[0]
        _check(rule, holder, tag, _expected(rule, dictionary_VR(tag), shifted), days)
        assert ds.PatientIdentityRemoved == "YES"


@pytest.mark.parametrize("tag", [0x50000010, 0x50023000, 0x60003000, 0x601E4000, 0x00091010, 0x7FD10010])
def test_masked_rows_and_private_attributes_removed(tag):
    ds = Dataset()
    ds.add_new(tag, "OB" if tag >> 16 != 0x0009 else "LO", b"SECRET" if tag >> 16 != 0x0009 else "SECRET")
    ds.add_new(0x60000010, "US", 8)  # overlay rows: not in the table nor on the allow-list: the overlay goes whole
    deid_dataset(ds, KEY)
    assert tag not in ds and 0x60000010 not in ds


def test_method_codes_name_the_options():
    ds = Dataset()
    ds.PatientID = "x"
    ds.add_new(0x00090010, "LO", "ACME 1.0")
    ds.add_new(0x00091001, "LO", "keep me")
    ds.add_new(0x00091002, "LO", "SECRET")
    deid_dataset(ds, KEY, DeidOptions(keep_dates_shifted=True, keep_private=("ACME 1.0:01",),
                                      keep_patient_characteristics=True))
    codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113107", "113108", "113111"]
    assert all(item.CodingSchemeDesignator == "DCM" for item in ds.DeidentificationMethodCodeSequence)
    assert ds[0x00091001].value == "keep me" and 0x00091002 not in ds and ds[0x00090010].value == "ACME 1.0"
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED" and len(ds.DeidentificationMethod) <= 64
    plain = Dataset()
    plain.PatientID = "x"
    deid_dataset(plain, KEY)
    assert [i.CodeValue for i in plain.DeidentificationMethodCodeSequence] == ["113100"]
    assert plain.LongitudinalTemporalInformationModified == "REMOVED"
