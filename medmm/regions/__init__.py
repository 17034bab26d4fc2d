"""medmm.regions (layer L2): one :class:`Box` that knows its frame, the converters through the view
chain, overlap and matching, and the one drawing function.

Frames (:mod:`medmm.regions.frames`): ``ACQUISITION`` (column, row, slice in position order of
image n), ``Display(axis)`` (the plane ``imaging.views.plane/render`` show; ``slice`` = display
index), ``Model(transform, source)`` (pixels after an :class:`InputTransform`: resize, letterbox,
pad, crop, Qwen2-VL ``smart_resize``), ``WORLD`` (RAS mm). x = column, y = row, x2/y2 exclusive.

Conversions (:class:`Box` methods) take a :class:`Geometry` (shape + affine) or a Volume:
``to_display(geom, axis=None)``, ``to_acquisition(geom)``, ``to_model(transform)``, ``from_model()``,
``to_world(geom)``, ``from_world(geom)``, ``to_frame(frame, geom)``; JSON via ``to_dict``/``from_dict``
(the synth manifest dict ``{"image","slice","x1","y1","x2","y2"}`` reads as an acquisition box).

Acquisition <-> display is exact (axis permutations and flips of voxel edges); model coordinates
stay floats (exact round trip); world boxes are RAS bounding boxes (exact for axis-aligned
volumes). A box shown on a view across its plane becomes its one-pixel-thick footprint through
the box centre.

Overlap: :func:`iou` (0 across images/slices, InputError across frames), :func:`match`
(Hungarian on 1 - IoU; precision = matched/predicted, recall = matched/true), :func:`hit_at_k`.
Drawing: :func:`draw` (rectangle | ellipse | arrow), used by model visual prompts, the app, the demo.
Imports only medmm.errors and medmm.imaging (no torch, no transformers). Names are imported
plainly: ``match`` and ``draw`` here are the functions, not the submodules of the same name.
"""

from __future__ import annotations

from medmm.regions.box import Box, BoxLike, as_box, intersection, iou, record_regions, same_plane
from medmm.regions.frames import (ACQUISITION, WORLD, Acquisition, Display, Frame, InputTransform, Model, World,
                                  frame_from_dict, smart_resize)
from medmm.regions.geometry import AXES, Geometry
from medmm.regions.match import Match, MatchResult, hit_at_k, iou_matrix, match, match_metrics
from medmm.regions.draw import SHAPES, draw, line_width  # noqa: E402  (after match: both are function names)

__all__ = ["ACQUISITION", "AXES", "Acquisition", "Box", "BoxLike", "Display", "Frame", "Geometry", "InputTransform",
           "Match", "MatchResult", "Model", "SHAPES", "WORLD", "World", "as_box", "draw", "frame_from_dict",
           "hit_at_k", "intersection", "iou", "iou_matrix", "line_width", "record_regions", "match", "match_metrics", "same_plane",
           "smart_resize"]
