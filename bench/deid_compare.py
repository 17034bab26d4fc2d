"""De-identification side by side: medmm, dicognito and deid (pydicom's ``deid``) on the same files.

``python -m bench.deid_compare [--copies N] [--keep DIR]``

A corpus is written here from files shipped with pydicom and pydicom-data, with a unique marker
planted in every kind of place a de-identifier can miss (issue 20, N10): the usual patient/study
attributes, the file meta, overlays, sequences the profile marks D (ContentSequence text, graphic
annotations, institution and operator codes), private tags, an unlisted text attribute, an unlisted
UID holding the original SOP Instance UID, a JPEG COM segment inside the pixel data, and an
encapsulated PDF (title and body). Images say BurnedInAnnotation NO, so medmm refuses none of them
for pixel text (that refusal is tested in tests/deid). Each tool de-identifies a copy of the corpus with its default
settings; every output byte is then searched for every marker and for every original UID. Printed:
per place, how many planted markers survive per tool; the total of surviving identifiers; how many
files each tool wrote, and how many it refused (a refusal is not a leak: nothing is written).

Peers are optional bench dependencies (``pip install 'medmm[bench]'`` or ``requirements-bench.txt``);
a missing one is named and skipped. The corpus is our own construction: the figures say which places
each tool cleans, not how often real archives hold such values.
"""

from __future__ import annotations

import argparse
import shutil
import struct
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

SOURCES = ["CT_small.dcm", "MR_small.dcm", "SC_rgb_jpeg_dcmtk.dcm", "JPEG2000.dcm", "rtdose.dcm", "emri_small.dcm"]
PLACES = ("patient/study attributes", "file meta", "overlay", "sequence (D)", "private tag", "unlisted text",
          "unlisted UID", "JPEG COM segment", "encapsulated PDF")


@dataclass
class Planted:
    markers: dict[str, str] = field(default_factory=dict)  # marker -> place
    uids: set[str] = field(default_factory=set)  # original UIDs (identifiers too)
    files: int = 0


def _shipped(name: str) -> str:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        raise FileNotFoundError(name)
    return str(path)


def _mark(planted: Planted, place: str, tag: str) -> str:
    marker = f"MKR{len(planted.markers):04d}{tag}"
    planted.markers[marker] = place
    return marker


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "99LOCAL", meaning
    return item


def _plant_headers(ds: Dataset, planted: Planted) -> None:
    m = lambda place, tag: _mark(planted, place, tag)  # noqa: E731
    ds.PatientName = f"{m('patient/study attributes', 'PN')}^JANE"
    ds.PatientID = m("patient/study attributes", "PID")
    ds.AccessionNumber = m("patient/study attributes", "ACC")[:16]
    ds.InstitutionName = m("patient/study attributes", "INST")
    ds.ReferringPhysicianName = m("patient/study attributes", "REF")
    ds.StudyDescription = m("patient/study attributes", "SDESC")
    ds.file_meta.SourceApplicationEntityTitle = m("file meta", "AE")[:16]
    ds.file_meta.PrivateInformationCreatorUID = "1.2.3.4"
    ds.file_meta.PrivateInformation = m("file meta", "PRIV").encode()
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000022, "LO", m("overlay", "ODESC"))
    ds.add_new(0x60001500, "LO", m("overlay", "OLAB"))
    content = Dataset()
    content.ValueType, content.TextValue = "TEXT", m("sequence (D)", "TEXT")
    ds.ContentSequence = Sequence([content])
    text = Dataset()
    text.UnformattedTextValue = m("sequence (D)", "GRAPH")
    annotation = Dataset()
    annotation.TextObjectSequence = Sequence([text])
    ds.GraphicAnnotationSequence = Sequence([annotation])
    ds.InstitutionCodeSequence = Sequence([_code("H1", m("sequence (D)", "INSTCODE"))])
    operator = Dataset()
    operator.PersonIdentificationCodeSequence = Sequence([_code("OP", m("sequence (D)", "OPER"))])
    ds.OperatorIdentificationSequence = Sequence([operator])
    block = ds.private_block(0x0029, "ACME MARKERS", create=True)
    block.add_new(0x10, "LO", m("private tag", "PRIV"))
    ds.AcquisitionDeviceProcessingCode = m("unlisted text", "ADPC")
    ds.SOPInstanceUIDOfConcatenationSource = str(ds.SOPInstanceUID)
    planted.uids |= {str(ds.get(k)) for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
                                               "FrameOfReferenceUID") if ds.get(k)}


def _unlisted_uid_marker(planted: Planted) -> None:
    """The unlisted UID place is measured by the original SOP UID surviving in that attribute."""
    planted.markers.setdefault("SOPInstanceUIDOfConcatenationSource", "unlisted UID")


def _with_jpeg_com(ds: Dataset, text: str) -> None:
    n = int(ds.get("NumberOfFrames") or 1)
    frames = list(generate_frames(ds.PixelData, number_of_frames=n))
    payload = text.encode()
    com = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
    ds.PixelData = encapsulate([f[:2] + com + f[2:] for f in frames])


def _pdf(planted: Planted) -> Dataset:
    ds = pydicom.dcmread(_shipped("CT_small.dcm"))
    for keyword in ("PixelData", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                    "SamplesPerPixel", "PhotometricInterpretation"):
        if keyword in ds:
            del ds[keyword]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.Modality = "DOC"
    ds.DocumentTitle = _mark(planted, "encapsulated PDF", "TITLE")
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n" + _mark(planted, "encapsulated PDF", "BODY").encode() + b"\n%%EOF"
    return ds


def make_corpus(folder: Path, copies: int = 2) -> Planted:
    """Write the corpus (``copies`` × each source + one PDF per copy) with markers; returns what was planted."""
    planted = Planted()
    _unlisted_uid_marker(planted)
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for copy in range(copies):
            for name in SOURCES:
                ds = pydicom.dcmread(_shipped(name))
                for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
                    ds.data_element(keyword).value = generate_uid()
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                ds.BurnedInAnnotation = "NO"  # the corpus is about headers: no tool may refuse for pixel text
                _plant_headers(ds, planted)
                if str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.50":
                    _with_jpeg_com(ds, _mark(planted, "JPEG COM segment", "COM"))
                ds.save_as(folder / f"{copy}_{name}", enforce_file_format=True)
                planted.files += 1
            pdf = _pdf(planted)
            pdf.SOPInstanceUID = generate_uid()
            pdf.file_meta.MediaStorageSOPInstanceUID = pdf.SOPInstanceUID
            planted.uids.add(str(pdf.SOPInstanceUID))
            pdf.save_as(folder / f"{copy}_document.dcm", enforce_file_format=True)
            planted.files += 1
    return planted


# ------------------------------------------------------------------ the tools
def run_medmm(src: Path, out: Path) -> tuple[int, int]:
    from medmm.deid import DeidKey, deid_tree

    summary = deid_tree(str(src), str(out), key=DeidKey.from_seed(None))
    return len(summary.written), len(summary.skipped) + len(summary.burned_in)


def run_dicognito(src: Path, out: Path) -> tuple[int, int]:
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer()
    out.mkdir(parents=True, exist_ok=True)
    written = refused = 0
    for path in sorted(src.iterdir()):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path)
                anonymizer.anonymize(ds)
                ds.save_as(out / path.name)
            written += 1
        except Exception:  # a peer's failure on one file is counted, not fatal
            refused += 1
    return written, refused


def run_deid(src: Path, out: Path) -> tuple[int, int]:
    from deid.config import DeidRecipe
    from deid.dicom import replace_identifiers

    out.mkdir(parents=True, exist_ok=True)
    files = [str(p) for p in sorted(src.iterdir())]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = replace_identifiers(dicom_files=files, deid=DeidRecipe(), save=True, output_folder=str(out),
                                   overwrite=True)
    written = len(list(out.rglob("*.dcm")))
    return written, len(files) - len(done or [])


TOOLS: dict[str, tuple[str, Callable[[Path, Path], tuple[int, int]]]] = {
    "medmm": ("medmm", run_medmm),
    "dicognito": ("dicognito", run_dicognito),
    "deid": ("deid", run_deid),
}


def _available(module: str) -> str | None:
    try:
        __import__(module)
    except Exception as exc:  # ImportError, or a peer that fails while importing
        return f"{type(exc).__name__}: {exc}"
    return None


def survivors(out: Path, planted: Planted) -> tuple[dict[str, int], int]:
    """(surviving markers per place, surviving (file, identifier) pairs incl. original UIDs)."""
    per_place: dict[str, int] = defaultdict(int)
    identifiers = 0
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        for marker, place in planted.markers.items():
            if place == "unlisted UID":
                continue
            if marker.encode() in raw:
                per_place[place] += 1
                identifiers += 1
        for uid in planted.uids:
            if uid.encode() in raw:
                identifiers += 1
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            value = ds.get("SOPInstanceUIDOfConcatenationSource")
            if value is not None and str(value) in planted.uids:
                per_place["unlisted UID"] += 1
        except Exception:
            continue
    return dict(per_place), identifiers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=2, help="copies of each source file (default 2)")
    parser.add_argument("--keep", default=None, help="keep the corpus and outputs in this folder")
    args = parser.parse_args(argv)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="deid-compare-"))
    try:
        planted = make_corpus(root / "corpus", copies=args.copies)
        per_place_planted: dict[str, int] = defaultdict(int)
        for place in planted.markers.values():
            per_place_planted[place] += 1
        per_place_planted["unlisted UID"] = planted.files - args.copies  # one per non-PDF file
        print(f"corpus: {planted.files} files, {len(planted.markers) - 1} planted markers, "
              f"{len(planted.uids)} original UIDs (our own construction; see the module docstring)")
        results: dict[str, tuple[dict[str, int], int, int, int, float]] = {}
        for name, (module, runner) in TOOLS.items():
            missing = _available(module)
            if missing:
                print(f"{name}: not installed ({missing}); skipped. pip install 'medmm[bench]'")
                continue
            out = root / f"out-{name}"
            if out.exists():
                shutil.rmtree(out)
            t0 = time.process_time()
            written, refused = runner(root / "corpus", out)
            cpu = time.process_time() - t0
            places, identifiers = survivors(out, planted)
            results[name] = (places, identifiers, written, refused, cpu)
        names = list(results)
        print(f"\n{'place (planted)':34s}" + "".join(f"{n:>12s}" for n in names))
        for place in PLACES:
            row = f"{place + ' (' + str(per_place_planted.get(place, 0)) + ')':34s}"
            row += "".join(f"{results[n][0].get(place, 0):>12d}" for n in names)
            print(row)
        print(f"{'surviving identifiers (all places)':34s}" + "".join(f"{results[n][1]:>12d}" for n in names))
        print(f"{'files written':34s}" + "".join(f"{results[n][2]:>12d}" for n in names))
        print(f"{'files refused or failed':34s}" + "".join(f"{results[n][3]:>12d}" for n in names))
        print(f"{'CPU seconds':34s}" + "".join(f"{results[n][4]:>12.2f}" for n in names))
        print("\nmarkers counted once per output file that still holds them; a refused file writes nothing.")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
