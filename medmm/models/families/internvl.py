"""InternVL (and MedRegA, built on InternVL-Chat): boxes as ``<ref>label</ref><box>[[x1, y1, x2, y2]]</box>``
on a 0–999 grid; the processor's resize of the whole image (the generic rule). No tiny builder."""

from __future__ import annotations

from medmm.models.families._base import Family


class InternVLFamily(Family):
    name = "internvl"
    model_types = ("internvl", "internvl_chat")
    codec_name = "internvl"
    image_token = "<IMG_CONTEXT>"


FAMILY = InternVLFamily()
