"""MedRegA's three region-centric tasks, built from annotations, and their exports.

* **Region→Text** (``region_to_text``): "What is <ref>this</ref><box>[[...]]</box> in this CT scan?" → the label
  (or the phrase, for phrase-grounding data such as MS-CXR).
* **Text→Region** (``text_to_region``): "Please locate <ref>liver</ref> in this CT scan." → every box of the
  object (several boxes per object: both lungs, a bilateral effusion).
* **Grounded report** (``grounded_report``): "Please locate the region and describe the condition of
  <ref>a</ref>, <ref>b</ref>" → each object with its boxes, then the sentences about them.

A :class:`Sample` keeps its truth as acquisition-frame :class:`~medmm.regions.box.Box` es of one
2-D plane (the acquired slice ``slice`` of ``image``) — never model text. The text a model
reads and writes is made only when needed, by :func:`conversation` with a codec and the
model-input :class:`~medmm.regions.frames.InputTransform` of the family being trained, so the
same samples train any family and are scored in acquisition pixels.

Sources: :func:`samples_from_annotations` (the public readers, label maps) and
:func:`synthetic_samples` (the study records of a ``medmm synth`` manifest, read by :mod:`medmm.studies`:
organs and findings from the label maps, each sampled slice rendered once to PNG). Exports: medmm JSONL (:func:`write_jsonl`),
LLaMA-Factory ShareGPT (:func:`export_sharegpt`) and InternVL JSONL (:func:`export_internvl`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from medmm import tasks as registry
from medmm.errors import InputError
from medmm.regions.box import Box
from medmm.regions.codecs import BoxCodec, InternVLCodec, Qwen2VLCodec, RefBoxes, get_codec
from medmm.regions.frames import Acquisition, InputTransform
from medmm.regions.labelmaps import LabelMapOptions, label_map_regions
from medmm.regions.readers import AnnotatedImage, LabeledRegion

# The region tasks declare themselves in the task registry (medmm.tasks) at the end of this module;
# ``TASKS`` is the registry's list of them, kept for the callers that import it.

SYSTEM = {
    "region_to_text": ("You are a helpful medical assistant. Your task is object recognition. You will be given a "
                       "medical image and a region of it. The region is represented in the form of bounding box, "
                       "{hint}. Name what is in the region."),
    "text_to_region": ("You are a helpful medical assistant. Your task is object detection. You will be given a "
                       "medical image and the name of an object. Answer with every box of the object in this "
                       "format: {hint}."),
    "grounded_report": ("You are a helpful medical assistant. Your task is grounded report generation: locate each "
                        "named region in this format: {hint}, then describe its condition."),
}
MODALITY_WORDS = {"CT": "CT scan", "MR": "MRI scan", "DX": "chest X-ray", "CR": "chest X-ray", "CXR": "chest X-ray",
                  "US": "ultrasound image", "PT": "PET scan"}


@dataclass(frozen=True)
class Sample:
    """One training or evaluation example: a plane of an image, its objects, the task and the target."""

    id: str
    task: str
    image: str  # path of the image file (PNG/JPEG, DICOM or NIfTI), relative to the JSONL's folder or absolute
    width: int
    height: int
    objects: tuple[LabeledRegion, ...]  # truth, acquisition frame; for region_to_text the one region asked about
    slice: int | None = None  # acquired slice of a volume (None: a 2-D image or a pre-rendered PNG of the slice)
    # (the boxes keep the image index and acquired slice of the study they come from: provenance, and
    # the plane predictions are compared on)
    window: str = "file"
    modality: str | None = None
    text: str | None = None  # grounded report: the description after the boxes
    source: str = ""
    split: str | None = None
    study_id: str | None = None

    def __post_init__(self) -> None:
        if self.task not in region_task_names():
            raise InputError(f"unknown region task {self.task!r}: use one of {', '.join(region_task_names())}")
        if not self.objects:
            raise InputError(f"sample {self.id}: a region task needs at least one object with boxes")

    @property
    def target(self) -> str:
        """What Region→Text should answer (the phrase when there is one, else the label)."""
        o = self.objects[0]
        return o.phrase or o.label

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "task": self.task, "image": self.image, "slice": self.slice, "width": self.width,
                "height": self.height, "window": self.window, "modality": self.modality, "source": self.source,
                "split": self.split, "study_id": self.study_id, "text": self.text,
                "objects": [{"label": o.label, "phrase": o.phrase, "annotator": o.annotator,
                             "boxes": [b.to_dict() for b in o.boxes]} for o in self.objects]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Sample":
        try:
            objects = tuple(LabeledRegion(str(o["label"]), tuple(Box.from_dict(b) for b in o["boxes"]),
                                          phrase=o.get("phrase"), annotator=o.get("annotator"))
                            for o in d["objects"])
            return cls(id=str(d["id"]), task=str(d["task"]), image=str(d["image"]), width=int(d["width"]),
                       height=int(d["height"]), objects=objects, slice=d.get("slice"), window=d.get("window") or "file",
                       modality=d.get("modality"), text=d.get("text"), source=d.get("source") or "",
                       split=d.get("split"), study_id=d.get("study_id"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a region-task sample ({type(exc).__name__}: {exc}); expected the keys "
                             "id, task, image, width, height, objects[{label, boxes}]") from None


@dataclass(frozen=True)
class Conversation:
    """The text of one sample for one model family: system prompt, question, answer."""

    system: str
    user: str
    assistant: str

    def messages(self, n_images: int = 1) -> list[dict[str, Any]]:
        """transformers chat messages (the image before the question)."""
        content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
        content.append({"type": "text", "text": self.user})
        return [{"role": "system", "content": [{"type": "text", "text": self.system}]},
                {"role": "user", "content": content}]


def model_boxes(boxes: Sequence[Box], transform: InputTransform) -> tuple[tuple[float, float, float, float], ...]:
    """Acquisition boxes of the sample's plane in model-input pixels (``transform`` from the plane's pixels)."""
    out = []
    for b in boxes:
        if not isinstance(b.frame, Acquisition):
            raise InputError("sample boxes must be in the acquisition frame")
        out.append(b.to_model(transform).as_tuple())
    return tuple(out)


def _modality_word(modality: str | None) -> str:
    return MODALITY_WORDS.get((modality or "").upper(), "image")


def conversation(sample: Sample, codec: BoxCodec, transform: InputTransform | None = None,
                 system: bool = True) -> Conversation:
    """The question and answer of ``sample`` with boxes written by ``codec`` in model-input pixels."""
    t = transform or InputTransform.identity(sample.width, sample.height)
    if tuple(t.source_size) != (sample.width, sample.height):
        raise InputError(f"sample {sample.id}: the transform starts from {t.source_size}, the image is "
                         f"{(sample.width, sample.height)}")
    size = t.size
    where = _modality_word(sample.modality)
    if sample.task == "region_to_text":
        q = f"What is {codec.ref('this')}{codec.encode_boxes(model_boxes(sample.objects[0].boxes, t), size)} in this {where}?"
        a = sample.target
    elif sample.task == "text_to_region":
        o = sample.objects[0]
        q = f"Please locate {codec.ref(o.phrase or o.label)} in this {where}."
        a = codec.encode([RefBoxes(o.phrase or o.label, model_boxes(o.boxes, t))], size)
    else:
        names = ", ".join(codec.ref(o.label) for o in sample.objects)
        q = f"Please locate the region and describe the condition of {names}"
        a = codec.encode([RefBoxes(o.label, model_boxes(o.boxes, t)) for o in sample.objects], size)
        if sample.text:
            a = f"{a}: {sample.text}"
    sys_text = SYSTEM[sample.task].format(hint=codec.format_hint) if system else ""
    return Conversation(sys_text, q, a)


# ------------------------------------------------------------------ building samples

def _sid(*parts: Any) -> str:
    return "/".join(str(p) for p in parts if p is not None and p != "")


def image_size(path: str) -> tuple[int, int]:
    """(width, height) of an image file from its header (PNG/JPEG, DICOM, NIfTI plane); no pixels read."""
    low = path.lower()
    if not os.path.isfile(path):
        raise InputError(f"{path}: image not found")
    if low.endswith((".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")):
        from PIL import Image

        try:
            with Image.open(path) as img:
                return img.size
        except OSError as exc:
            raise InputError(f"{path}: not a readable image ({exc})") from None
    if low.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        shape = nib.load(path).shape
        return int(shape[0]), int(shape[1])  # x = i (columns), y = j (rows)
    from medmm.errors import MedmmError
    from medmm.imaging.dicom import read_header

    try:
        header = read_header(path)  # medmm's reader: budgets and the deflate-bomb guard (issue 20, N4)
    except MedmmError as exc:
        raise InputError(f"{path}: cannot read the image size from the DICOM header ({type(exc).__name__})") from None
    if header.rows <= 0 or header.cols <= 0:
        raise InputError(f"{path}: cannot read the image size from the DICOM header (no Rows/Columns)")
    return header.cols, header.rows


def region_task_names() -> tuple[str, ...]:
    """The region tasks of the task registry (:mod:`medmm.tasks`), in declaration order."""
    return registry.names("region")


def samples_from_annotations(images: Iterable[AnnotatedImage], tasks: Sequence[str] | None = None,
                             split: str | None = None, window: str = "file",
                             describe: Callable[[AnnotatedImage, LabeledRegion], str | None] | None = None,
                             problems: list[str] | None = None) -> list[Sample]:
    """Samples of ``tasks`` from annotated images (one per object for Region→Text and Text→Region, one
    per image for a grounded report). An image without a size has it read from its file header; an
    image that cannot be used is skipped and named in ``problems`` (or raises when ``problems`` is None)."""
    tasks = region_task_names() if tasks is None else tasks
    bad = [t for t in tasks if t not in region_task_names()]
    if bad:
        raise InputError(f"unknown region task(s) {bad}: use {', '.join(region_task_names())}")
    out: list[Sample] = []
    for a in images:
        if not a.regions:
            continue
        try:
            if not a.image_path:
                raise InputError(f"image {a.image_id} ({a.source}): no image path (give the images folder)")
            width, height = (a.width, a.height) if a.width and a.height else image_size(a.image_path)
        except InputError as exc:
            if problems is None:
                raise
            problems.append(f"{a.image_id}: {exc}")
            continue
        common = dict(image=a.image_path, width=int(width), height=int(height), slice=a.slice, window=window,
                      modality=a.modality, source=a.source, split=a.split or split, study_id=a.image_id)
        out.extend(_image_samples(a, tasks, common, describe))
    return out


def _image_samples(a: AnnotatedImage, tasks: Sequence[str], common: dict[str, Any],
                   describe: Callable[[AnnotatedImage, LabeledRegion], str | None] | None) -> list[Sample]:
    out = []
    for r in a.regions:
        name = r.phrase or r.label
        if "text_to_region" in tasks:
            out.append(Sample(_sid(a.image_id, a.slice, "t2r", name, r.annotator), "text_to_region", objects=(r,), **common))
        if "region_to_text" in tasks:
            for i, b in enumerate(r.boxes):
                one = LabeledRegion(r.label, (b,), phrase=r.phrase, annotator=r.annotator)
                out.append(Sample(_sid(a.image_id, a.slice, "r2t", name, r.annotator, i), "region_to_text",
                                  objects=(one,), **common))
    if "grounded_report" in tasks:
        texts = [describe(a, r) if describe else (r.phrase or None) for r in a.regions]
        text = " ".join(t for t in texts if t) or None
        out.append(Sample(_sid(a.image_id, a.slice, "report"), "grounded_report", objects=tuple(a.regions),
                          text=text, **common))
    return out


def _sentences(report: str) -> list[str]:
    findings = report.split("FINDINGS:", 1)[-1].split("IMPRESSION:", 1)[0]
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", findings) if s.strip()]


def _finding_sentence(report: str, finding: Mapping[str, Any]) -> str | None:
    words = [str(finding.get("type", "")).replace("_", " ")]
    if finding.get("type") == "consolidation":
        words.append("pneumonia")
    for s in _sentences(report):
        low = s.lower()
        if any(w and w in low for w in words) and not low.startswith("no "):
            return s
    return None


def render_plane(path: str, slice_index: int | None, window: str, volume: Any = None) -> np.ndarray:
    """The acquired plane ``slice_index`` of an image file as uint8 ``[row, col]`` or ``[row, col, 3]``
    (acquisition orientation: the pixels a sample's boxes refer to). ``window`` is a medmm window
    (``lung``, ``C,W``, ``file``...) or three joined by ``+`` for an RGB composite. ``volume``: the file
    already loaded (several planes of one series)."""
    from medmm.imaging.io import load_volume
    from medmm.imaging.views import to_uint8

    vol = volume if volume is not None else load_volume(path)
    data = vol.data
    if data.ndim == 4 and not vol.rgb:
        data = data[..., 0]
    k = 0 if slice_index is None else int(slice_index)
    n = data.shape[2] if data.ndim >= 3 else 1
    if not 0 <= k < n:
        raise InputError(f"{path}: slice {k} out of range (0..{n - 1})")
    plane = np.swapaxes(data[:, :, k], 0, 1)  # [i, j] -> [row = j, col = i]
    windows = window.split("+")
    if len(windows) == 3:
        return np.stack([to_uint8(plane, vol, w) for w in windows], axis=-1)
    return to_uint8(plane, vol, window)


def load_image(sample: Sample, root: str | None = None) -> Any:
    """The sample's plane as an RGB PIL image (PNG/JPEG read directly; DICOM/NIfTI rendered)."""
    from PIL import Image

    path = sample.image if os.path.isabs(sample.image) or root is None else os.path.join(root, sample.image)
    if path.lower().endswith((".png", ".jpg", ".jpeg")) and sample.slice is None:
        try:
            img = Image.open(path)
            img.load()
        except OSError as exc:
            raise InputError(f"{path}: cannot read the image ({exc})") from None
        return img.convert("RGB")
    return Image.fromarray(render_plane(path, sample.slice, sample.window)).convert("RGB")


def pretty_organ(name: str) -> str:
    """``lung_right`` -> ``right lung``."""
    parts = name.split("_")
    if len(parts) == 2 and parts[1] in ("left", "right"):
        return f"{parts[1]} {parts[0]}"
    return name.replace("_", " ")


def synthetic_samples(studies: Iterable[Any], out_dir: str | os.PathLike[str],
                      organ_labels: Mapping[str, int], tasks: Sequence[str] | None = None,
                      options: LabelMapOptions = LabelMapOptions(), windows: Mapping[str, str] | None = None,
                      include_findings: bool = True, modalities: Sequence[str] | None = None,
                      split: str | None = None) -> list[Sample]:
    """Samples from synthetic studies: the :class:`medmm.studies.Study` records of a ``medmm synth`` manifest
    (``medmm.studies.iter_manifest(path)``: the one study record; this layer sits below ``medmm.studies``, so
    the caller reads the manifest and passes the records in). Organs (``organ_labels``: name -> label value,
    e.g. ``medmm.synth.truth.ORGAN_LABELS``) and findings (their truth ``label``) come from each image's
    label map; one PNG per sampled slice is written under ``out_dir/images`` (paths relative to ``out_dir``).
    ``windows`` maps a modality to its window (default: three CT windows as RGB for CT, ``file`` else).
    A study the reader marked with a ``problem`` (a path outside the manifest's folder) is refused."""
    if isinstance(studies, (str, os.PathLike)):
        raise InputError(f"{os.fspath(studies)}: synthetic_samples takes study records; read the manifest with "
                         "medmm.studies.iter_manifest(path)")
    os.makedirs(os.path.join(os.fspath(out_dir), "images"), exist_ok=True)
    windows = {"CT": "lung+mediastinum+bone", **(windows or {})}
    organ_names = {int(v): pretty_organ(k) for k, v in organ_labels.items()}
    samples: list[Sample] = []
    for study in studies:
        if study.problem:
            raise InputError(f"study {study.study_id}: {study.problem}")
        modality = study.header.modality if study.header is not None else None
        if modalities and modality not in modalities:
            continue
        truth = study.truth.findings if (include_findings and study.truth is not None) else ()
        findings = {int(f.label): f for f in truth if f.label is not None}
        names = {**organ_names, **{v: f.type.replace("_", " ") for v, f in findings.items()}}
        seen_maps: set[str] = set()
        for image_index, entry in enumerate(study.images):
            lm = entry.label_map
            if not lm or lm in seen_maps:
                continue  # the NIfTI copy of a series shares its label map and grid
            seen_maps.add(lm)
            planes = label_map_regions(lm, names=names, options=options, image_id=study.study_id,
                                       image=image_index, image_path=entry.path, source="synth")
            samples.extend(_study_samples(study, modality, image_index, planes, findings, names, os.fspath(out_dir),
                                          tasks, windows.get(modality or "", "file"), split))
    return samples


def _study_samples(study: Any, modality: str | None, image_index: int, planes: list[AnnotatedImage],
                   findings: Mapping[int, Any], names: Mapping[int, str], out_dir: str,
                   tasks: Sequence[str] | None, window: str, split: str | None) -> list[Sample]:
    """The samples of one image of a synthetic study; each sampled plane rendered once to PNG (the
    series is loaded at most once)."""
    from PIL import Image

    sid = study.study_id
    label_value = {n: v for v, n in names.items()}

    def describe(img: AnnotatedImage, r: LabeledRegion) -> str | None:
        f = findings.get(label_value.get(r.label, -1))
        return _finding_sentence(study.report or "", {"type": f.type}) if f else None

    volume = None
    out = []
    for a in planes:
        png = os.path.join("images", f"{sid}_{image_index}_{'k%d' % a.slice if a.slice is not None else '2d'}.png")
        target = os.path.join(out_dir, png)
        if not os.path.isfile(target):
            if volume is None:
                from medmm.imaging.io import load_volume

                volume = load_volume(a.image_path or "")
            Image.fromarray(render_plane(a.image_path or "", a.slice, window, volume)).save(target)
        # the PNG is the acquired plane: its pixels are the boxes' acquisition pixels
        flat = replace(a, image_path=png, modality=modality, split=split, image_id=sid)
        for s in samples_from_annotations([flat], tasks=tasks, window=window, describe=describe):
            out.append(replace(s, id=f"{sid}/{image_index}/{s.id.split('/', 1)[1]}", slice=None))
    return out


# ------------------------------------------------------------------ files

def write_jsonl(samples: Iterable[Sample], path: str | os.PathLike[str]) -> int:
    """medmm JSONL: one :meth:`Sample.to_dict` per line, written all or nothing (:func:`medmm.runs.write_atomic`).
    Returns the number written."""
    from medmm.runs import write_atomic

    lines = [json.dumps(s.to_dict()) + "\n" for s in samples]
    write_atomic(path, "".join(lines))
    return len(lines)


def read_jsonl(path: str | os.PathLike[str]) -> tuple[list[Sample], list[str]]:
    """Samples of a medmm JSONL file and the problems of lines that could not be read (``"line N: ..."``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: samples file not found")
    out, problems = [], []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append(Sample.from_dict(json.loads(line)))
            except (json.JSONDecodeError, InputError) as exc:
                problems.append(f"line {n}: {exc}")
    return out, problems


def _exported_image(sample: Sample, root: str | None, images_dir: str) -> tuple[str, int, int]:
    """A path other tools can open (PNG/JPEG as is; DICOM/NIfTI planes rendered to PNG), and its size."""
    path = sample.image if os.path.isabs(sample.image) or root is None else os.path.join(root, sample.image)
    if path.lower().endswith((".png", ".jpg", ".jpeg")) and sample.slice is None:
        return path, sample.width, sample.height
    os.makedirs(images_dir, exist_ok=True)
    digest = hashlib.sha256(f"{path}|{sample.slice}|{sample.window}".encode()).hexdigest()[:16]
    target = os.path.join(images_dir, f"{digest}.png")
    if not os.path.isfile(target):
        load_image(sample, root).save(target)
    return target, sample.width, sample.height


def _default_transform(codec: BoxCodec, width: int, height: int) -> InputTransform:
    return codec.default_input(width, height)  # the codec knows whether its pixels are of a resized input


def _exportable(samples: Iterable[Sample], root: str | None, images_dir: str,
                problems: list[str] | None) -> Iterable[tuple[Sample, str, int, int]]:
    for s in samples:
        try:
            yield (s, *_exported_image(s, root, images_dir))
        except InputError as exc:  # one unreadable image never stops an export
            if problems is None:
                raise
            problems.append(f"{s.id}: {exc}")


def export_sharegpt(samples: Iterable[Sample], path: str | os.PathLike[str], codec: BoxCodec | str = Qwen2VLCodec.name,
                    root: str | None = None, images_dir: str | None = None,
                    transform: Callable[[int, int], InputTransform] | None = None,
                    problems: list[str] | None = None) -> int:
    """LLaMA-Factory ShareGPT (``messages`` + ``images``, one ``<image>`` per image) as a JSON list.
    Samples whose image cannot be read are skipped and named in ``problems`` (raise when it is None)."""
    codec = get_codec(codec) if isinstance(codec, str) else codec
    images_dir = images_dir or os.path.join(os.path.dirname(os.path.abspath(path)), "images")
    records = []
    for s, img, w, h in _exportable(samples, root, images_dir, problems):
        conv = conversation(s, codec, (transform or (lambda a, b: _default_transform(codec, a, b)))(w, h))
        records.append({"messages": [{"role": "system", "content": conv.system},
                                     {"role": "user", "content": "<image>" + conv.user},
                                     {"role": "assistant", "content": conv.assistant}],
                        "images": [img]})
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(records, fh, indent=1)
    return len(records)


def export_internvl(samples: Iterable[Sample], path: str | os.PathLike[str], root: str | None = None,
                    images_dir: str | None = None, scale: int = 999, problems: list[str] | None = None) -> int:
    """InternVL / MedRegA JSONL: ``{"id", "image", "width", "height", "conversations": [human, gpt]}``."""
    codec = InternVLCodec(scale=scale)
    images_dir = images_dir or os.path.join(os.path.dirname(os.path.abspath(path)), "images")
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for s, img, w, h in _exportable(samples, root, images_dir, problems):
            conv = conversation(s, codec, InputTransform.identity(w, h), system=False)
            fh.write(json.dumps({"id": s.id, "image": img, "width": w, "height": h,
                                 "conversations": [{"from": "human", "value": "<image>\n" + conv.user},
                                                   {"from": "gpt", "value": conv.assistant}]}) + "\n")
            n += 1
    return n


@dataclass(frozen=True)
class SplitSpec:
    """A deterministic split by study: ``fraction`` of studies (hash of the id with ``seed``) go to ``name``."""

    name: str = "test"
    fraction: float = 0.2
    seed: int = 0
    other: str = "train"

    def assign(self, study_id: str) -> str:
        h = int(hashlib.sha256(f"{self.seed}:{study_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return self.name if h < self.fraction else self.other


def with_split(samples: Iterable[Sample], spec: SplitSpec) -> list[Sample]:
    """Samples with ``split`` set from their study (every sample of a study lands on the same side)."""
    return [replace(s, split=spec.assign(s.study_id or s.id)) for s in samples]


# ------------------------------------------------------------------ the region tasks in the task registry

def _register() -> tuple[str, ...]:
    from medmm.regions import answers

    for name, title, parser, scorer in (
            ("region_to_text", "Region→Text: name what is in the boxed region", answers.answer_text,
             answers.score_region_to_text),
            ("text_to_region", "Text→Region: every box of the named object", answers.predicted_boxes,
             answers.score_text_to_region),
            ("grounded_report", "Grounded report: locate each named region, then describe it", answers.report_boxes,
             answers.score_grounded_report)):
        registry.register(registry.TaskSpec(name, "region", title, reader=read_jsonl, prompt=conversation,
                                            parser=parser, scorer=scorer))
    return region_task_names()


TASKS = _register()

__all__ = ["TASKS", "region_task_names", "Sample", "Conversation", "conversation", "samples_from_annotations", "synthetic_samples",
           "write_jsonl", "read_jsonl", "export_sharegpt", "export_internvl", "load_image", "render_plane",
           "model_boxes", "pretty_organ", "SplitSpec", "with_split", "image_size"]
