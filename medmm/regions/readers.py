"""Readers of public box annotations → :class:`AnnotatedImage` records with acquisition-frame boxes.

Each reader takes the dataset's own file, exactly as distributed, and gives one record per image
(several boxes of one label stay together: Text→Region with several boxes per object). A bad
row never stops a file: it is skipped and named in ``Annotations.problems`` (row number and
reason, no values); a file without the columns the format needs is an
:class:`~medmm.errors.InputError` that says which columns are missing.

| reader | file | coordinates |
|---|---|---|
| :func:`read_vindr_cxr` | ``annotations/annotations_train.csv`` (``image_id, rad_id, class_name, x_min, y_min, x_max, y_max``) | DICOM pixels; "No finding" rows have empty boxes |
| :func:`read_chestxray14` | ``BBox_List_2017.csv`` (header ``Image Index,Finding Label,Bbox [x,y,w,h],,,``: read by position) | pixels of the 1024² PNG |
| :func:`read_rsna_pneumonia` | ``stage_2_train_labels.csv`` (``patientId,x,y,width,height,Target``) | DICOM pixels; Target 0 rows are negatives |
| :func:`read_ms_cxr` | ``MS_CXR_Local_Alignment_v1.*.csv`` (``dicom_id,category_name,label_text,path,x,y,w,h,image_width,image_height[,split]``) | pixels of the image (``image_width`` × ``image_height``) |

Boxes are :class:`~medmm.regions.box.Box` in the acquisition frame of a 2-D image (``slice=None``),
``x2``/``y2`` exclusive: ``x_max`` of VinDr-CXR is taken as the exclusive edge (the datasets give
float edges, not pixel indices).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from medmm.errors import InputError
from medmm.regions.box import Box


@dataclass(frozen=True)
class LabeledRegion:
    """One object of an image: its label, all its boxes, and optionally a phrase and the annotator."""

    label: str
    boxes: tuple[Box, ...]
    phrase: str | None = None
    annotator: str | None = None


@dataclass(frozen=True)
class AnnotatedImage:
    """The annotations of one 2-D image (or one slice of a volume: ``slice`` set)."""

    image_id: str
    source: str
    regions: tuple[LabeledRegion, ...] = ()
    negatives: tuple[str, ...] = ()  # labels stated absent ("No finding", RSNA Target 0)
    image_path: str | None = None
    width: int | None = None
    height: int | None = None
    slice: int | None = None
    split: str | None = None
    modality: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return sorted({r.label for r in self.regions})


@dataclass(frozen=True)
class Annotations:
    """A reader's result: the images and every row that could not be used (``"row N: reason"``)."""

    images: tuple[AnnotatedImage, ...]
    problems: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.images)


def _rows(path: str | os.PathLike[str], need: Sequence[str] | None) -> tuple[list[str], list[list[str]]]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: annotation file not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable CSV file ({type(exc).__name__}); give the file as distributed") from None
    if not rows:
        raise InputError(f"{path}: the file is empty")
    header = [h.strip() for h in rows[0]]
    if need:
        missing = [c for c in need if c not in header]
        if missing:
            raise InputError(f"{path}: missing column(s) {missing}; found {header}. Is this the right file "
                             "for this reader?")
    return header, rows[1:]


def _num(value: str) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError("not finite")
    return v


def _box(x1: float, y1: float, x2: float, y2: float, label: str, width: int | None = None,
         height: int | None = None) -> Box:
    if x2 <= x1 or y2 <= y1:
        raise ValueError("empty or inverted box")
    if x1 < 0 or y1 < 0 or (width and x2 > width + 0.5) or (height and y2 > height + 0.5):
        raise ValueError("box outside the image")
    return Box(x1, y1, x2, y2, image=0, slice=None, label=label)


class _Collector:
    """Groups rows into images and (label, annotator, phrase) objects, keeping first-seen order."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.order: list[str] = []
        self.objects: dict[str, dict[tuple[str, str | None, str | None], list[Box]]] = {}
        self.negatives: dict[str, set[str]] = {}
        self.info: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []

    def image(self, image_id: str, **info: Any) -> None:
        if image_id not in self.objects:
            self.order.append(image_id)
            self.objects[image_id] = {}
            self.negatives[image_id] = set()
            self.info[image_id] = {}
        self.info[image_id].update({k: v for k, v in info.items() if v is not None})

    def add(self, image_id: str, label: str, box: Box, annotator: str | None = None, phrase: str | None = None) -> None:
        self.image(image_id)
        self.objects[image_id].setdefault((label, annotator, phrase), []).append(box)

    def negative(self, image_id: str, label: str) -> None:
        self.image(image_id)
        self.negatives[image_id].add(label)

    def result(self, images_root: str | None, suffix: str) -> Annotations:
        out = []
        for image_id in self.order:
            info = dict(self.info[image_id])
            path = info.pop("path", None)
            if path and images_root and not os.path.isabs(path):
                path = os.path.join(images_root, path)
            elif not path and images_root:
                path = os.path.join(images_root, image_id + suffix)
            regions = tuple(LabeledRegion(label, tuple(boxes), phrase=phrase, annotator=annotator)
                            for (label, annotator, phrase), boxes in self.objects[image_id].items())
            out.append(AnnotatedImage(image_id, self.source, regions, tuple(sorted(self.negatives[image_id])),
                                      image_path=path, width=info.pop("width", None), height=info.pop("height", None),
                                      split=info.pop("split", None), modality=info.pop("modality", None), meta=info))
        return Annotations(tuple(out), tuple(self.problems))


def read_vindr_cxr(path: str | os.PathLike[str], images_root: str | None = None,
                   radiologists: Iterable[str] | None = None) -> Annotations:
    """VinDr-CXR ``annotations_train.csv`` (or ``annotations_test.csv``, which has no ``rad_id``).

    Every radiologist's boxes are kept as separate objects (``annotator`` = ``rad_id``); pass
    ``radiologists`` to keep some of them. Images are ``{image_id}.dicom`` under ``images_root``.
    """
    header, rows = _rows(path, ["image_id", "class_name", "x_min", "y_min", "x_max", "y_max"])
    col = {h: i for i, h in enumerate(header)}
    keep = set(radiologists) if radiologists is not None else None
    c = _Collector("vindr-cxr")
    for n, row in enumerate(rows, start=2):
        try:
            image_id, label = row[col["image_id"]].strip(), row[col["class_name"]].strip()
            rad = row[col["rad_id"]].strip() if "rad_id" in col else None
        except IndexError:
            c.problems.append(f"row {n}: too few columns")
            continue
        if not image_id or not label:
            c.problems.append(f"row {n}: empty image_id or class_name")
            continue
        if keep is not None and rad not in keep:
            continue
        c.image(image_id, modality="CXR")
        coords = [row[col[k]].strip() for k in ("x_min", "y_min", "x_max", "y_max")]
        if label.lower() == "no finding" or all(v == "" for v in coords):
            if label.lower() != "no finding":
                c.problems.append(f"row {n}: a finding without a box")
                continue
            c.negative(image_id, label)
            continue
        try:
            c.add(image_id, label, _box(*(_num(v) for v in coords), label=label), annotator=rad)
        except ValueError as exc:
            c.problems.append(f"row {n}: {exc}")
    return c.result(images_root, ".dicom")


def read_chestxray14(path: str | os.PathLike[str], images_root: str | None = None) -> Annotations:
    """ChestX-ray14 ``BBox_List_2017.csv``: columns read by position (image, label, x, y, w, h), because
    the header is literally ``Image Index,Finding Label,Bbox [x,y,w,h],,,``. Images are 1024 × 1024."""
    header, rows = _rows(path, None)
    if len(header) < 6 or header[0] != "Image Index" or header[1] != "Finding Label" or not header[2].startswith("Bbox"):
        raise InputError(f"{path}: expected the header 'Image Index,Finding Label,Bbox [x,y,w,h],,,' of "
                         f"BBox_List_2017.csv, found {header[:6]}")
    c = _Collector("chestxray14")
    for n, row in enumerate(rows, start=2):
        if not any(v.strip() for v in row):
            continue
        if len(row) < 6:
            c.problems.append(f"row {n}: fewer than 6 columns")
            continue
        image_id, label = row[0].strip(), row[1].strip()
        if not image_id or not label:
            c.problems.append(f"row {n}: empty image index or finding label")
            continue
        try:
            x, y, w, h = (_num(v) for v in row[2:6])
            box = _box(x, y, x + w, y + h, label=label, width=1024, height=1024)
        except ValueError as exc:
            c.problems.append(f"row {n}: {exc}")
            continue
        c.image(image_id, width=1024, height=1024, modality="CXR", path=image_id)
        c.add(image_id, label, box)
    return c.result(images_root, "")


def read_rsna_pneumonia(path: str | os.PathLike[str], images_root: str | None = None,
                        label: str = "pneumonia") -> Annotations:
    """RSNA Pneumonia ``stage_2_train_labels.csv``: one row per box; ``Target`` 0 rows (empty box)
    make the image a negative for ``label``. Images are ``{patientId}.dcm`` (1024 × 1024)."""
    header, rows = _rows(path, ["patientId", "x", "y", "width", "height", "Target"])
    col = {h: i for i, h in enumerate(header)}
    c = _Collector("rsna-pneumonia")
    for n, row in enumerate(rows, start=2):
        try:
            pid, target = row[col["patientId"]].strip(), row[col["Target"]].strip()
            coords = [row[col[k]].strip() for k in ("x", "y", "width", "height")]
        except IndexError:
            c.problems.append(f"row {n}: too few columns")
            continue
        if not pid or target not in ("0", "1"):
            c.problems.append(f"row {n}: empty patientId or Target not 0/1")
            continue
        c.image(pid, width=1024, height=1024, modality="CXR")
        if target == "0":
            if any(coords):
                c.problems.append(f"row {n}: Target 0 with a box (box ignored)")
            c.negative(pid, label)
            continue
        try:
            x, y, w, h = (_num(v) for v in coords)
            c.add(pid, label, _box(x, y, x + w, y + h, label=label, width=1024, height=1024))
        except ValueError as exc:
            c.problems.append(f"row {n}: {exc}")
    return c.result(images_root, ".dcm")


def read_ms_cxr(path: str | os.PathLike[str], images_root: str | None = None) -> Annotations:
    """MS-CXR phrase grounding: rows of one (``dicom_id``, ``label_text``) are the boxes of one phrase;
    ``category_name`` is the label; ``path`` (relative to ``images_root``) locates the image."""
    need = ["dicom_id", "category_name", "label_text", "path", "x", "y", "w", "h", "image_width", "image_height"]
    header, rows = _rows(path, need)
    col = {h: i for i, h in enumerate(header)}
    c = _Collector("ms-cxr")
    for n, row in enumerate(rows, start=2):
        try:
            get = {k: row[col[k]].strip() for k in need + (["split"] if "split" in col else [])}
        except IndexError:
            c.problems.append(f"row {n}: too few columns")
            continue
        if not get["dicom_id"] or not get["category_name"] or not get["label_text"]:
            c.problems.append(f"row {n}: empty dicom_id, category_name or label_text")
            continue
        try:
            width, height = int(_num(get["image_width"])), int(_num(get["image_height"]))
            x, y, w, h = (_num(get[k]) for k in ("x", "y", "w", "h"))
            box = _box(x, y, x + w, y + h, label=get["category_name"], width=width, height=height)
        except ValueError as exc:
            c.problems.append(f"row {n}: {exc}")
            continue
        c.image(get["dicom_id"], width=width, height=height, modality="CXR", path=get["path"] or None,
                split=get.get("split") or None)
        c.add(get["dicom_id"], get["category_name"], box, phrase=get["label_text"])
    return c.result(images_root, ".jpg")


READERS = {
    "vindr-cxr": read_vindr_cxr,
    "chestxray14": read_chestxray14,
    "rsna-pneumonia": read_rsna_pneumonia,
    "ms-cxr": read_ms_cxr,
}


def read_annotations(fmt: str, path: str | os.PathLike[str], images_root: str | None = None) -> Annotations:
    """Read ``path`` with the reader of ``fmt`` (one of :data:`READERS`)."""
    if fmt not in READERS:
        raise InputError(f"unknown annotation format {fmt!r}: use one of {', '.join(READERS)}")
    return READERS[fmt](path, images_root=images_root)
