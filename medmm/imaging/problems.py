"""Series problems and the policy medmm applies to each — the one place they are defined.

medmm detects and reports geometry problems; it never averages them away. Each problem code
has exactly one policy:

==================== ========= =====================================================================
code                 policy    what medmm does
==================== ========= =====================================================================
gap                  error     Missing slices (a step well above the typical spacing). Loading
                               refuses; ``force=True`` splits the stack into contiguous runs, each
                               a correct regular volume.
uneven_spacing       error     Steps differ beyond rtol 0.05 / atol 0.1 mm (dicom2nifti's tolerance)
                               without a clear gap. Loading refuses; ``force=True`` stacks at the
                               median step and keeps the problem on the volume.
duplicate_position   error     Two or more slices at one position (echoes, phases, repeats).
                               Loading refuses; ``force=True`` keeps the first slice of each
                               position (lowest InstanceNumber) and keeps the problem.
mixed_orientation    split     A series holds several orientations (localizers, radial slices):
                               one stack per orientation, each carrying this problem.
inconsistent_shape   split     Rows/Columns/samples differ within a series: one stack per shape.
gantry_tilt          warning   Slice positions are not along the slice normal (CT gantry tilt).
                               The affine keeps the true, sheared slice step, so world
                               coordinates are exact; tools that assume orthogonal axes (ITK,
                               SimpleITK) would misplace voxels.
single_slice         warning   One slice: the out-of-plane spacing is SpacingBetweenSlices, else
                               SliceThickness, else 1 mm — the message says which.
no_geometry          warning   No ImagePositionPatient/ImageOrientationPatient (projection X-ray,
                               ultrasound, stripped files): frames in stored order, identity
                               orientation, pixel spacing from PixelSpacing/ImagerPixelSpacing
                               or 1 mm. The third axis is a frame index, not a distance.
==================== ========= =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Policy(str, Enum):
    ERROR = "error"
    SPLIT = "split"
    WARNING = "warning"


POLICIES: dict[str, Policy] = {
    "gap": Policy.ERROR,
    "uneven_spacing": Policy.ERROR,
    "duplicate_position": Policy.ERROR,
    "mixed_orientation": Policy.SPLIT,
    "inconsistent_shape": Policy.SPLIT,
    "gantry_tilt": Policy.WARNING,
    "single_slice": Policy.WARNING,
    "no_geometry": Policy.WARNING,
}

# dicom2nifti's tolerance for "the slice increment is constant".
SPACING_RTOL = 0.05
SPACING_ATOL_MM = 0.1
# A step this many times the typical step is a gap (missing slices), not unevenness.
GAP_FACTOR = 1.5
# Two orientations whose direction cosines differ by less than this are the same.
ORIENTATION_ATOL = 1e-3
# Slice step deviating from the normal by more than this (degrees) is a gantry tilt.
TILT_DEGREES = 0.05


@dataclass(frozen=True)
class Problem:
    """One detected problem: a code from :data:`POLICIES` and a message for the user."""

    code: str
    message: str

    def __post_init__(self) -> None:
        if self.code not in POLICIES:
            raise ValueError(f"unknown problem code {self.code!r}; known: {sorted(POLICIES)}")

    @property
    def policy(self) -> Policy:
        return POLICIES[self.code]

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
