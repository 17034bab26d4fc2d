"""Property tests of the box chain: acquisition ↔ display ↔ model input ↔ world, over every axis
permutation and flip (48 orientations), anisotropic voxels, resizes, letterboxes, pads and crops —
and against the pixels :func:`medmm.imaging.views.plane` actually renders."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medmm.errors import InputError
from medmm.imaging.views import plane
from medmm.imaging.volume import LPS_TO_RAS, Volume
from medmm.regions import (ACQUISITION, AXES, WORLD, Box, Display, Geometry, InputTransform, Model, World, as_box,
                           iou, smart_resize)

SIGNED_PERMUTATIONS = [
    np.diag(signs) @ np.eye(3)[list(perm)]
    for perm in itertools.permutations(range(3)) for signs in itertools.product((1.0, -1.0), repeat=3)
]
assert len(SIGNED_PERMUTATIONS) == 48

PROFILE = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _lps_affine(row: tuple[float, float, float], col: tuple[float, float, float], normal_sign: float,
                spacing: tuple[float, float, float]) -> np.ndarray:
    """RAS affine of a DICOM series: i along the row cosines, j along the column cosines, k along
    ``normal_sign`` × (row × col) — the position order of the slices."""
    r, c = np.array(row, float), np.array(col, float)
    n = normal_sign * np.cross(r, c)
    lps = np.eye(4)
    lps[:3, :3] = np.stack([r * spacing[0], c * spacing[1], n * spacing[2]], axis=1)
    lps[:3, 3] = (-100.0, -120.0, 40.0)
    return LPS_TO_RAS @ lps


# Series a scanner writes, named: (row cosines, column cosines, position order along the normal)
NAMED = {
    "axial head-first": ((1, 0, 0), (0, 1, 0), 1.0),
    "axial feet-first": ((-1, 0, 0), (0, 1, 0), 1.0),  # FFS: image left-right flipped, slices go S->I
    "axial, slices stored superior to inferior": ((1, 0, 0), (0, 1, 0), -1.0),
    "coronal": ((1, 0, 0), (0, 0, -1), 1.0),
    "coronal posterior to anterior": ((1, 0, 0), (0, 0, -1), -1.0),
    "sagittal": ((0, 1, 0), (0, 0, -1), 1.0),
    "sagittal feet-first": ((0, -1, 0), (0, 0, 1), 1.0),
}


@st.composite
def geometries(draw, max_size: int = 9) -> Geometry:
    perm = draw(st.sampled_from(SIGNED_PERMUTATIONS))
    spacing = draw(st.tuples(*[st.floats(0.3, 5.0) for _ in range(3)]))
    shape = draw(st.tuples(st.integers(2, max_size), st.integers(2, max_size), st.integers(1, max_size)))
    origin = draw(st.tuples(*[st.floats(-200, 200) for _ in range(3)]))
    aff = np.eye(4)
    aff[:3, :3] = perm @ np.diag(spacing)
    aff[:3, 3] = origin
    return Geometry(shape, aff)


@st.composite
def boxes_in(draw, g: Geometry) -> Box:
    nx, ny, nk = g.shape
    x1 = draw(st.integers(0, nx - 1))
    x2 = draw(st.integers(x1 + 1, nx))
    y1 = draw(st.integers(0, ny - 1))
    y2 = draw(st.integers(y1 + 1, ny))
    k = draw(st.integers(0, nk - 1))
    return Box(x1, y1, x2, y2, slice=None if nk == 1 else k, image=draw(st.integers(0, 3)))


@st.composite
def geometry_and_box(draw, max_size: int = 9) -> tuple[Geometry, Box]:
    g = draw(geometries(max_size))
    return g, draw(boxes_in(g))


def _volume(g: Geometry) -> Volume:
    """A volume whose every voxel value is unique (its flat index), to locate pixels after rendering."""
    return Volume(np.arange(int(np.prod(g.shape)), dtype=np.float32).reshape(g.shape), g.affine)


# -- acquisition <-> display ---------------------------------------------------------------------------

@PROFILE
@given(geometry_and_box())
def test_acquisition_display_round_trip_is_exact(case):
    g, box = case
    d = box.to_display(g)
    assert isinstance(d.frame, Display) and d.frame.axis == g.acquisition_axis()
    assert d.to_acquisition(g) == box
    assert (d.width, d.height) in ((box.width, box.height), (box.height, box.width))
    w, h, n = g.view_size(d.frame.axis)
    assert 0 <= d.x1 < d.x2 <= w and 0 <= d.y1 < d.y2 <= h and 0 <= d.slice < n


@PROFILE
@given(geometry_and_box())
def test_display_box_shows_exactly_the_acquisition_pixels(case):
    """The rendered plane at the converted box holds exactly the voxels of the acquisition box,
    and the pixel at each acquisition corner appears at a corner of the display box."""
    g, box = case
    vol = _volume(g)
    d = box.to_display(g)
    img = plane(vol, d.slice, d.frame.axis)
    assert img.shape == (g.view_size(d.frame.axis)[1], g.view_size(d.frame.axis)[0])
    k = 0 if box.slice is None else box.slice
    acq = vol.data[box.x1:box.x2, box.y1:box.y2, k]
    shown = img[d.y1:d.y2, d.x1:d.x2]
    assert sorted(acq.ravel().tolist()) == sorted(shown.ravel().tolist())
    acq_corners = {float(vol.data[x, y, k]) for x in (box.x1, box.x2 - 1) for y in (box.y1, box.y2 - 1)}
    disp_corners = {float(img[y, x]) for x in (d.x1, d.x2 - 1) for y in (d.y1, d.y2 - 1)}
    assert acq_corners == disp_corners


@PROFILE
@given(geometry_and_box(), st.sampled_from(AXES))
def test_other_views_show_the_box_footprint(case, axis):
    """On a view across the acquired planes the box is one pixel thick, on the plane through its
    centre; every pixel inside it is a voxel of the box, and it holds as many as it should."""
    g, box = case
    vol = _volume(g)
    d = box.to_display(g, axis)
    img = plane(vol, d.slice, axis)
    shown = img[d.y1:d.y2, d.x1:d.x2].ravel()
    k = 0 if box.slice is None else box.slice
    inside = set(vol.data[box.x1:box.x2, box.y1:box.y2, k].ravel().tolist())
    assert shown.size > 0 and set(shown.tolist()) <= inside
    if axis == g.acquisition_axis():
        assert shown.size == box.area
    else:
        assert min(d.width, d.height) == 1 and shown.size in (box.width, box.height)


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_series_corner_pixels(name):
    """Scanner orientations by name (feet-first included): the acquisition box's voxels are the
    rendered box's pixels on the acquisition view."""
    row, col, sign = NAMED[name]
    g = Geometry((7, 5, 6), _lps_affine(row, col, sign, (0.7, 1.3, 2.5)))
    vol = _volume(g)
    box = Box(1, 2, 5, 4, slice=4)
    d = box.to_display(g)
    expected_axis = {"axial": "axial", "coronal": "coronal", "sagittal": "sagittal"}[name.split()[0].rstrip(",")]
    assert d.frame == Display(expected_axis)
    img = plane(vol, d.slice, expected_axis)
    assert sorted(img[d.y1:d.y2, d.x1:d.x2].ravel()) == sorted(vol.data[1:5, 2:4, 4].ravel())
    assert d.to_acquisition(g) == box


def test_display_boxes_of_other_views_convert_between_views():
    g = Geometry((6, 7, 8), np.diag([-1.0, -2.0, 3.0, 1.0]))  # i->L, j->P, k->S: display == acquisition axes
    axial = Box(1, 2, 4, 5, frame=Display("axial"), slice=3)
    assert axial.to_acquisition(g) == Box(1, 2, 4, 5, slice=3)
    cor = axial.to_display(g, "coronal")
    # coronal rows run from superior (row 0 = k 7) down: k 3 is row 8 - 4 = 4; columns are i
    assert (cor.x1, cor.x2, cor.y1, cor.y2, cor.slice) == (1, 4, 4, 5, 3)
    assert cor.to_display(g, "axial") == Box(1, 3, 4, 4, frame=Display("axial"), slice=3)  # footprint: row 3 only


# -- acquisition <-> model input -----------------------------------------------------------------------

@st.composite
def transforms(draw, width: int, height: int, inside: Box) -> InputTransform:
    """A random pipeline: optional crop that keeps ``inside``, then resize / letterbox / pad / smart_resize."""
    t = InputTransform.identity(width, height)
    if draw(st.booleans()):
        t = t.crop(draw(st.integers(0, int(inside.x1))), draw(st.integers(0, int(inside.y1))),
                   draw(st.integers(int(inside.x2), width)), draw(st.integers(int(inside.y2), height)))
    for _ in range(draw(st.integers(1, 3))):
        step = draw(st.sampled_from(["resize", "letterbox", "pad", "smart"]))
        if step == "resize":
            t = t.resize(draw(st.integers(4, 700)), draw(st.integers(4, 700)))
        elif step == "letterbox":
            t = t.letterbox(draw(st.integers(8, 700)))
        elif step == "pad":
            t = t.pad(*(draw(st.integers(0, 30)) for _ in range(4)))
        else:
            t = t.smart_resize(factor=28, min_pixels=56 * 56, max_pixels=28 * 28 * draw(st.integers(4, 1280)))
    return t


@PROFILE
@given(st.data())
def test_acquisition_model_round_trip(data):
    g, box = data.draw(geometry_and_box(max_size=40))
    for source in (box, box.to_display(g)):
        w, h = (g.shape[0], g.shape[1]) if source.frame == ACQUISITION else g.view_size(source.frame.axis)[:2]
        t = data.draw(transforms(w, h, source))
        m = source.to_model(t)
        assert isinstance(m.frame, Model) and m.frame.source == source.frame and m.slice == source.slice
        assert 0 <= m.x1 <= m.x2 <= t.size[0] and 0 <= m.y1 <= m.y2 <= t.size[1]
        assert m.from_model() == source  # floats kept: exact
        assert m.to_acquisition(g) == box
        # what a model writes is rounded: back within half a model pixel, i.e. 0.5/scale source pixels
        r = Box(round(m.x1), round(m.y1), round(m.x2), round(m.y2), frame=m.frame, slice=m.slice, image=m.image)
        back = r.from_model()
        tol = 0.5 + 0.5 / min(t.scale_x, t.scale_y)
        assert all(abs(a - b) <= tol for a, b in zip(back.as_tuple(), source.as_tuple()))
        if min(t.scale_x, t.scale_y) >= 1:
            assert all(abs(a - b) <= 1 for a, b in zip(back.as_tuple(), source.as_tuple()))


def test_transform_builders_by_hand():
    t = InputTransform.identity(200, 100).letterbox(400)  # scale 2, content 400x200 centred: 100 rows each side
    assert (t.scale_x, t.scale_y, t.offset_x, t.offset_y, t.size) == (2.0, 2.0, 0.0, 100.0, (400, 400))
    b = Box(10, 20, 30, 40).to_model(t)
    assert b.as_tuple() == (20.0, 140.0, 60.0, 180.0)
    c = InputTransform.identity(200, 100).crop(50, 10, 150, 90).pad(5, 6, 7, 8).resize(56, 50)
    assert c.size == (56, 50)
    assert c.forward(50, 10) == pytest.approx((5 * 56 / 112, 6 * 50 / 94))  # 100x80 crop padded to 112x94
    assert InputTransform.identity(200, 100).then(InputTransform.identity(200, 100).resize(20, 10)).scale_x == 0.1
    with pytest.raises(InputError, match="cannot chain"):
        InputTransform.identity(200, 100).then(InputTransform.identity(20, 10))
    # a box outside a crop is clipped to the model image
    clipped = Box(0, 0, 60, 60).to_model(InputTransform.identity(200, 100).crop(50, 50, 100, 100))
    assert clipped.as_tuple() == (0.0, 0.0, 10.0, 10.0)


@pytest.mark.parametrize("hw", [(100, 100), (37, 911), (2048, 1536), (10, 1000), (480, 640), (3000, 30)])
def test_smart_resize_matches_transformers(hw):
    qwen = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")
    h, w = hw
    assert smart_resize(h, w) == tuple(qwen.smart_resize(h, w, factor=28, min_pixels=56 * 56, max_pixels=28 * 28 * 1280))
    assert InputTransform.identity(w, h).smart_resize().size == smart_resize(h, w)[::-1]


# -- acquisition <-> world ------------------------------------------------------------------------------

@PROFILE
@given(geometry_and_box())
def test_world_round_trip_and_containment(case):
    g, box = case
    wbox = box.to_world(g)
    assert wbox.frame == WORLD and wbox.slice is None
    assert wbox.to_acquisition(g) == box and wbox.from_world(g) == box
    assert wbox.to_display(g) == box.to_display(g)
    # every voxel centre of the box lies inside, every neighbour outside the box's voxels does not
    k = 0 if box.slice is None else box.slice
    sp = np.abs(np.linalg.det(g.affine[:3, :3]))
    assert wbox.volume == pytest.approx(box.area * sp, rel=1e-9)
    for x in (box.x1, box.x2 - 1):
        for y in (box.y1, box.y2 - 1):
            p = g.affine[:3, :3] @ [x, y, k] + g.affine[:3, 3]
            assert wbox.x1 < p[0] < wbox.x2 and wbox.y1 < p[1] < wbox.y2 and wbox.z1 < p[2] < wbox.z2
    outside = g.affine[:3, :3] @ [box.x2, box.y1, k] + g.affine[:3, 3]
    assert not (wbox.x1 < outside[0] < wbox.x2 and wbox.y1 < outside[1] < wbox.y2 and wbox.z1 < outside[2] < wbox.z2)


def test_world_box_by_hand():
    g = Geometry((10, 10, 5), np.diag([-2.0, -2.0, 3.0, 1.0]))  # RAS: i -> -R
    w = Box(1, 2, 4, 3, slice=2).to_world(g)
    assert (w.x1, w.x2, w.y1, w.y2, w.z1, w.z2) == (-7.0, -1.0, -5.0, -3.0, 4.5, 7.5)


# -- JSON, validation, IoU -------------------------------------------------------------------------------

@PROFILE
@given(st.data())
def test_json_round_trip_every_frame(data):
    g, box = data.draw(geometry_and_box())
    t = InputTransform.identity(*g.view_size("axial")[:2]).letterbox(data.draw(st.integers(8, 64)))
    for b in (box, box.to_display(g, data.draw(st.sampled_from(AXES))), box.to_world(g),
              box.to_display(g, "axial").to_model(t), box.to_model(InputTransform.identity(*g.shape[:2]).resize(33, 17))):
        b = Box(**{**b.__dict__, "label": "nodule", "score": 0.25})
        assert Box.from_dict(b.to_dict()) == b
        assert as_box(b.to_dict()) == b


def test_manifest_dict_reads_as_acquisition_box():
    d = {"image": 1, "slice": 7, "x1": 3, "y1": 4, "x2": 9, "y2": 10}
    b = Box.from_dict(d)
    assert b == Box(3, 4, 9, 10, frame=ACQUISITION, image=1, slice=7)
    assert {k: b.to_dict()[k] for k in d} == d and b.to_dict()["frame"] == "acquisition"
    assert Box.from_dict({"image": 0, "slice": None, "x1": 1, "y1": 1, "x2": 2, "y2": 2}).slice is None
    with pytest.raises(InputError, match="not a box"):
        Box.from_dict({"image": 0, "x1": 1})
    with pytest.raises(InputError, match="unknown box frame"):
        Box.from_dict({"x1": 1, "y1": 1, "x2": 2, "y2": 2, "frame": "screen"})


def test_validation_messages():
    g = Geometry((4, 4, 3), np.eye(4))
    with pytest.raises(InputError, match="inverted"):
        Box(5, 0, 2, 1)
    with pytest.raises(InputError, match="out of range"):
        Box(0, 0, 1, 1, slice=3).to_display(g)
    with pytest.raises(InputError, match="no slice"):
        Box(0, 0, 1, 1).to_display(g)
    with pytest.raises(InputError, match="needs the image geometry"):
        Box(0, 0, 1, 1, frame=Display("axial"), slice=0).to_acquisition()
    with pytest.raises(InputError, match="world boxes only"):
        Box(0, 0, 1, 1, z1=0.0, z2=1.0)
    with pytest.raises(InputError, match="needs z1"):
        Box(0, 0, 1, 1, frame=World())
    with pytest.raises(InputError, match="unknown view axis"):
        Display("oblique")
    with pytest.raises(InputError, match="different frames"):
        iou(Box(0, 0, 1, 1, slice=0), Box(0, 0, 1, 1, frame=Display("axial"), slice=0))


def test_iou_by_hand():
    a = Box(0, 0, 10, 10, slice=2)
    assert iou(a, Box(5, 0, 15, 10, slice=2)) == pytest.approx(50 / 150)
    assert iou(a, a) == 1.0
    assert iou(a, Box(10, 0, 20, 10, slice=2)) == 0.0  # touching edges (x2 exclusive) do not overlap
    assert iou(a, Box(0, 0, 10, 10, slice=3)) == 0.0
    assert iou(a, Box(0, 0, 10, 10, slice=2, image=1)) == 0.0
    w1 = Box(0, 0, 2, 2, frame=WORLD, z1=0.0, z2=2.0)
    w2 = Box(1, 1, 3, 3, frame=WORLD, z1=1.0, z2=3.0)
    assert iou(w1, w2) == pytest.approx(1 / 15)
    assert math.isclose(iou(a.to_world(Geometry((20, 20, 5), np.eye(4))),
                            Box(5, 0, 15, 10, slice=2).to_world(Geometry((20, 20, 5), np.eye(4)))), 50 / 150)


def _rotation(angles: tuple[float, float, float]) -> np.ndarray:
    a, b, c = np.radians(angles)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


@PROFILE
@given(geometry_and_box(), st.tuples(*[st.floats(-25, 25) for _ in range(3)]))
def test_oblique_volumes_display_exactly_and_world_boxes_cover(case, angles):
    """A tilted (oblique) series: display is still the nearest-axis reorientation (exact, as the
    renderer does it); a world box is a bounding box, so the way back covers the original box."""
    g0, box = case
    aff = g0.affine.copy()
    aff[:3, :3] = _rotation(angles) @ aff[:3, :3]
    g = Geometry(g0.shape, aff)
    vol = _volume(g)
    d = box.to_display(g)
    img = plane(vol, d.slice, d.frame.axis)
    k = 0 if box.slice is None else box.slice
    assert sorted(img[d.y1:d.y2, d.x1:d.x2].ravel()) == sorted(vol.data[box.x1:box.x2, box.y1:box.y2, k].ravel())
    assert d.to_acquisition(g) == box
    back = box.to_world(g).to_acquisition(g)
    assert back.x1 <= box.x1 and back.y1 <= box.y1 and back.x2 >= box.x2 and back.y2 >= box.y2
