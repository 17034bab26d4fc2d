"""The one drawing function: exact rectangle pixels (x2/y2 exclusive), ellipses inside the box,
arrows pointing at it, and every accepted box form."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medmm.errors import InputError
from medmm.regions import WORLD, Box, Display, draw


def _red(img: Image.Image) -> np.ndarray:
    a = np.asarray(img)
    return (a[..., 0] == 255) & (a[..., 1] == 0) & (a[..., 2] == 0)


def test_rectangle_outlines_exactly_the_box_edges():
    img = np.zeros((20, 30), dtype=np.uint8)
    out = draw(img, [Box(3, 4, 10, 12, frame=Display("axial"), slice=0)], width=1)
    red = _red(out)
    expected = np.zeros_like(red)
    expected[4, 3:10] = expected[11, 3:10] = True
    expected[4:12, 3] = expected[4:12, 9] = True
    assert (red == expected).all()
    assert out.size == (30, 20) and out.mode == "RGB"
    assert (img == 0).all()  # the input is not drawn on


def test_tuple_dict_and_box_draw_the_same():
    img = Image.new("L", (40, 40))
    a = draw(img, [(5, 6, 20, 25)])
    b = draw(img, [{"x1": 5, "y1": 6, "x2": 20, "y2": 25}])
    c = draw(img, [Box(5, 6, 20, 25)])
    assert (np.asarray(a) == np.asarray(b)).all() and (np.asarray(a) == np.asarray(c)).all()
    assert img.getextrema() == (0, 0)


def test_ellipse_stays_inside_and_touches_the_box():
    out = _red(draw(np.zeros((50, 50), np.uint8), [(10, 12, 31, 41)], shape="ellipse", width=1))
    rows, cols = np.nonzero(out)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (12, 40, 10, 30)
    assert not out[12, 10] and not out[40, 30]  # the corners are not on an ellipse


def test_arrow_points_at_the_box_from_outside():
    out = _red(draw(np.zeros((60, 60), np.uint8), [(30, 30, 40, 40)], shape="arrow", width=1))
    rows, cols = np.nonzero(out)
    assert out[30, 30]  # the tip touches the box corner
    assert rows.max() <= 30 and cols.max() <= 30 and rows.min() < 25 and cols.min() < 25
    assert not out[31:40, 31:40].any()  # the box itself stays visible


def test_colour_width_and_refusals():
    out = np.asarray(draw(np.zeros((20, 20), np.uint8), [(2, 2, 18, 18)], colour=(0, 255, 0), width=3))
    assert (out[2:5, 2:18, 1] == 255).all() and out[6:14, 6:14].max() == 0
    with pytest.raises(InputError, match="world"):
        draw(np.zeros((5, 5), np.uint8), [Box(0, 0, 1, 1, frame=WORLD, z1=0.0, z2=1.0)])
    with pytest.raises(InputError, match="unknown shape"):
        draw(np.zeros((5, 5), np.uint8), [(0, 0, 1, 1)], shape="star")


# -- the models' visual prompts draw through the same function, in the right frame ------------------------

def _coronal_volume():
    from medmm.imaging.volume import Volume

    # coronal acquisition: i -> L (RAS -x), j -> inferior (RAS -z), k -> anterior... stored as a scanner would
    aff = np.array([[-0.8, 0, 0, 50.0], [0, 0, -2.0, 30.0], [0, -0.8, 0, 60.0], [0, 0, 0, 1.0]])
    return Volume(np.zeros((48, 40, 9), dtype=np.float32), aff)


def test_request_draws_acquisition_boxes_where_the_view_shows_them():
    from medmm.models.base import ImageView, Request
    from medmm.regions import Geometry, InputTransform

    vol = _coronal_volume()
    acq = Box(5, 7, 20, 30, slice=2)
    d = acq.to_display(vol)
    assert d.frame == Display("coronal") and Geometry.of(vol).acquisition_axis() == "coronal"
    view = ImageView(vol, window="100,50", index=d.slice, axis="coronal")  # zeros render black
    by_acq = Request(images=[view], prompt="Where?", boxes=[[acq]]).pil_images()[0]
    by_display = Request(images=[view], prompt="Where?", boxes=[[d]]).pil_images()[0]
    by_tuple = Request(images=[view], prompt="Where?", boxes=[[d.as_tuple()]]).pil_images()[0]
    expected = draw(np.zeros((by_acq.size[1], by_acq.size[0]), np.uint8), [d])
    for got in (by_acq, by_display, by_tuple):
        assert (np.asarray(got) == np.asarray(expected)).all()
    assert _red(by_acq).any()
    # a model-frame box on the resized image is drawn as is, on the source image it is mapped back
    t = InputTransform.identity(*by_acq.size).resize(96, 80)
    m = d.to_model(t)
    on_source = Request(images=[view], prompt="Where?", boxes=[[m]]).pil_images()[0]
    assert (np.asarray(on_source) == np.asarray(expected)).all()
    resized = Image.new("RGB", t.size)
    drawn = Request(images=[resized], prompt="Where?", boxes=[[m]], box_shape="ellipse").pil_images()[0]
    assert (np.asarray(drawn) == np.asarray(draw(resized, [m.as_tuple()], shape="ellipse"))).all()
    with pytest.raises(InputError, match="lies on coronal slice"):
        Request(images=[ImageView(vol, index=d.slice + 1, axis="coronal")], prompt="x", boxes=[[acq]]).pil_images()
    with pytest.raises(InputError, match="needs a Volume or ImageView"):
        Request(images=[resized], prompt="x", boxes=[[acq]]).pil_images()


def test_app_viewer_places_stored_regions_of_any_frame_on_the_acquired_slice(caplog):
    from medmm.app.views import boxes_for, draw_boxes

    vol = _coronal_volume()
    acq = Box(5, 7, 20, 30, slice=2, label="mass")
    stored = [acq.to_dict(), acq.to_display(vol).to_dict(), acq.to_world(vol).to_dict(),
              {"image": 0, "slice": 2, "x1": 5, "y1": 7, "x2": 20, "y2": 30, "label": "mass"},  # older manifests
              {"image": 1, "slice": 2, "x1": 1, "y1": 1, "x2": 3, "y2": 3},  # another image
              {"image": 0, "slice": 2, "x1": 9, "y1": 1}]  # unreadable: left out with a warning
    with caplog.at_level("WARNING"):
        got = boxes_for(stored, 0, 2, geometry=vol)
    assert got == [acq] * 4
    assert "1 stored region(s)" in caplog.text and "x1" not in caplog.text
    assert boxes_for(stored, 0, 3, geometry=vol) == []
    assert boxes_for(stored[:2], 0, 2) == [acq]  # without geometry a display box cannot be placed
    img = np.zeros((40, 48), np.uint8)
    drawn = np.asarray(draw_boxes(img, got))
    assert drawn.shape == (40, 48, 3) and (drawn[7, 5:20] == (255, 40, 40)).all() and drawn[8:29, 6:19].max() == 0
