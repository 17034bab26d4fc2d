"""The correctness benchmark's judge must catch wrong volumes, and medmm must pass it."""

from __future__ import annotations

import numpy as np

from bench.broken_series import read_medmm, run, truth, verdict
from tests.conftest import DICOMDIR_TESTS


def test_judge_flags_a_gap_averaged_away():
    path = str(DICOMDIR_TESTS / "77654033" / "CT2")
    slices = truth(path)
    # What MONAI's PydicomReader does: stack the 4 slices at the mean step (68.33 mm).
    data = np.stack([s.pixels.T for s in sorted(slices, key=lambda s: s.origin[2])], axis=-1)
    first = sorted(slices, key=lambda s: s.origin[2])[0]
    affine = np.diag([-0.488281, -0.488281, (105.52 + 99.48) / 3, 1.0])
    affine[:3, 3] = [-first.origin[0], -first.origin[1], first.origin[2]]
    assert verdict([(data, affine)], slices).startswith("WRONG")


def test_judge_accepts_the_truth():
    path = str(DICOMDIR_TESTS / "98892001" / "CT5N")
    assert verdict(read_medmm(path), truth(path)) == "correct"


def test_medmm_right_or_refuses_on_every_broken_series():
    rows = run({"medmm": read_medmm})
    assert len(rows) >= 9
    for label, outcome in rows:
        assert outcome["medmm"].startswith(("correct", "refused")), (label, outcome)
    refused = {label for label, o in rows if o["medmm"].startswith("refused")}
    assert any("CT2 (gap" in r for r in refused)
