"""Where a VLM flag points in the image, and which model raised it (issue 18 item 6).

A checker model trained with COMPLEX samples answers ``TYPE: "the wrong sentence" <box>``: the box of the
finding the error is about, in its family's codec and in the pixels the model receives
(:mod:`medmm.checkertrain.tasks` writes it so, for a single radiograph view). :func:`flag_region` asks the
COMPLEX question once more as free text for a report the checker flags, decodes the box with the family's codec
(:mod:`medmm.models.families`) and brings it back through the family's resize rule to the pixels of the first
view, as a :meth:`medmm.regions.Box.to_dict` of the study image that view shows (``image``: its index in the
study's images — the frontal one when a lateral is listed first; acquisition frame: a radiograph view is the image).
The review app draws it on the viewer beside the highlighted sentence (:mod:`medmm.app.evidence`).

No region is given (None) when the answer holds no box (an untrained model, or an error the truth had no region
for), when the model has no image processor to undo the resize (an ``http:`` server), or when the first view is a
projection of a volume (a coronal MIP, an axial slice: training grounds radiographs only, and a box on a MIP names
no slice). :func:`model_label` is what a VLM flag's ``model`` says: the model's spec and its fingerprint.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Sequence

log = logging.getLogger(__name__)

REGION_LABEL = "region"  # the label COMPLEX answers give their box (medmm.checkertrain.tasks)
MAX_ANSWER_TOKENS = 64
_VOLUME_SUFFIXES = (".nii", ".nii.gz")


def model_label(model: Any) -> str:
    """``"<spec> @<fingerprint[:12]>"`` (a model path or server, never a patient's data)."""
    name = str(getattr(model, "name", "") or type(model).__name__)
    try:
        fp = str(model.fingerprint())[:12]
    except Exception:  # a model that cannot fingerprint itself still names itself  # noqa: BLE001
        fp = ""
    return f"{name} @{fp}" if fp else name


def first_view_source(images: Sequence[Any] | None) -> tuple[int, bool]:
    """Which of the study's images the checker's first view comes from (its index in ``images``: the checker puts
    frontal radiographs before laterals, :func:`medmm.reports.checker_views.choose_paths`) and whether that image is
    a volume (a series folder or a NIfTI file, whose views get no region). ``(0, False)`` for ready images."""
    if not images or not all(isinstance(p, str) for p in images):
        return 0, False
    from medmm.errors import InputError
    from medmm.reports.checker_views import choose_paths

    try:
        first = choose_paths(list(images))[0]
    except (InputError, IndexError):
        return 0, False
    index = next((i for i, p in enumerate(images) if os.path.normpath(os.path.abspath(p)) ==
                  os.path.normpath(os.path.abspath(first))), 0)
    return index, os.path.isdir(first) or first.lower().endswith(_VOLUME_SUFFIXES)


def decode_region(model: Any, answer: str, view_size: tuple[int, int], image: int = 0) -> dict[str, Any] | None:
    """The first box of a COMPLEX answer (label ``region``, else any), in the pixels of a view of ``view_size``
    (width, height), as a box dict of ``image``; None when there is none or it cannot be placed."""
    from medmm.errors import InputError
    from medmm.models.families import family_of
    from medmm.regions.box import Box
    from medmm.regions.frames import ACQUISITION, Model

    processor = getattr(getattr(model, "processor", None), "image_processor", None)
    if processor is None or not answer:
        return None
    family = family_of(model)
    transform = family.input_transform(processor, int(view_size[0]), int(view_size[1]))
    decoded = family.codec().decode(answer, transform.size)
    boxes = decoded.for_label(REGION_LABEL) or decoded.boxes
    if not boxes:
        return None
    try:
        box = Box(*boxes[0], frame=Model(transform, ACQUISITION), image=image, label=REGION_LABEL).from_model()
    except (InputError, ValueError):
        return None
    return None if box.is_empty else box.to_dict()


def flag_region(model: Any, report: str, views: Sequence[Any], config: Any,
                study_images: Sequence[Any] | None = None) -> dict[str, Any] | None:
    """The region a flagged report's COMPLEX answer points at (module docstring), or None. ``views``: the PIL
    images the checker gave the model; ``study_images``: the study's image paths (to leave volumes out)."""
    from medmm.reports.vlm_checker import _request, complex_prompt, model_views

    if not views or not hasattr(model, "generate"):
        return None
    image, volume = first_view_source(study_images)
    if volume:
        return None
    try:
        [gen] = model.generate([_request(complex_prompt(report, config), model_views(model, views), config)],
                               max_new_tokens=MAX_ANSWER_TOKENS)
    except Exception as exc:  # a failed answer costs the flag its region, never the flag  # noqa: BLE001
        log.warning("the VLM's COMPLEX answer for the region failed (%s); the flag has no region", type(exc).__name__)
        return None
    return decode_region(model, gen.text, views[0].size, image)

