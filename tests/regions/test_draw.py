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
