"""Voxel phantoms with exact truth: a chest/upper-abdomen CT and a brain MR.

Coordinates are DICOM patient space (LPS, mm) centred on the phantom: x toward the
patient's left, y posterior, z superior. Arrays are indexed ``[k, row, col]`` =
``[z, y, x]`` with z increasing, so writing them slice by slice gives an axial DICOM series
whose row direction is +x and column direction is +y.

Every structure is drawn by a small shape function that only touches its bounding box, so a
256² × 128 phantom takes a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medmm.synth.truth import LESION_LABEL_BASE, ORGAN_LABELS, Finding


@dataclass
class Grid:
    """Voxel grid: shape (nz, ny, nx), spacing (dz, dy, dx) in mm, centred on the origin."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]

    @property
    def origin(self) -> np.ndarray:
        """LPS position (x, y, z) of voxel [0, 0, 0]'s centre."""
        nz, ny, nx = self.shape
        dz, dy, dx = self.spacing
        return np.array([-(nx - 1) * dx / 2, -(ny - 1) * dy / 2, -(nz - 1) * dz / 2])

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        o = self.origin
        nz, ny, nx = self.shape
        dz, dy, dx = self.spacing
        return o[2] + dz * np.arange(nz), o[1] + dy * np.arange(ny), o[0] + dx * np.arange(nx)

    def index(self, xyz: tuple[float, float, float]) -> tuple[int, int, int]:
        """(k, row, col) of the voxel nearest an LPS point."""
        o = self.origin
        dz, dy, dx = self.spacing
        return (int(round((xyz[2] - o[2]) / dz)), int(round((xyz[1] - o[1]) / dy)), int(round((xyz[0] - o[0]) / dx)))


@dataclass
class Phantom:
    grid: Grid
    values: np.ndarray  # float32 [z, y, x]: HU for CT, signal for MR
    labels: np.ndarray  # int16 [z, y, x]
    findings: list[Finding] = field(default_factory=list)
    organs: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = field(default_factory=dict)


def _bbox(grid: Grid, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Index slices (z, y, x) covering the LPS box [lo, hi] (x, y, z order), clipped."""
    z, y, x = grid.axes()
    sl = []
    for axis, a, b in ((z, lo[2], hi[2]), (y, lo[1], hi[1]), (x, lo[0], hi[0])):
        i0 = int(np.searchsorted(axis, a, side="left"))
        i1 = int(np.searchsorted(axis, b, side="right"))
        if i1 <= i0:
            return None
        sl.append(slice(i0, i1))
    return sl[0], sl[1], sl[2]


def ellipsoid(grid: Grid, center, radii) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """Mask of an axis-aligned ellipsoid (LPS centre and radii in mm), within its bounding box."""
    c, r = np.asarray(center, float), np.asarray(radii, float)
    box = _bbox(grid, c - r, c + r)
    if box is None:
        return None
    z, y, x = grid.axes()
    zz = ((z[box[0]] - c[2]) / r[2]) ** 2
    yy = ((y[box[1]] - c[1]) / r[1]) ** 2
    xx = ((x[box[2]] - c[0]) / r[0]) ** 2
    return box, (zz[:, None, None] + yy[None, :, None] + xx[None, None, :]) <= 1.0


def cylinder_z(grid: Grid, cx: float, cy: float, radius: float, z0: float, z1: float):
    """Mask of a vertical cylinder (axis along z) between z0 and z1."""
    box = _bbox(grid, np.array([cx - radius, cy - radius, z0]), np.array([cx + radius, cy + radius, z1]))
    if box is None:
        return None
    z, y, x = grid.axes()
    yy = (y[box[1]] - cy) ** 2
    xx = (x[box[2]] - cx) ** 2
    disk = (yy[:, None] + xx[None, :]) <= radius**2
    return box, np.broadcast_to(disk, (box[0].stop - box[0].start,) + disk.shape)


def segment(grid: Grid, p0, p1, radius: float):
    """Mask of a tube of ``radius`` mm around the segment p0→p1 (LPS)."""
    a, b = np.asarray(p0, float), np.asarray(p1, float)
    box = _bbox(grid, np.minimum(a, b) - radius, np.maximum(a, b) + radius)
    if box is None:
        return None
    z, y, x = grid.axes()
    pts = np.stack(np.meshgrid(x[box[2]], y[box[1]], z[box[0]], indexing="ij"), axis=-1)  # (x, y, z, 3)
    ab = b - a
    t = np.clip(((pts - a) @ ab) / max(ab @ ab, 1e-9), 0, 1)
    d = np.linalg.norm(pts - (a + t[..., None] * ab), axis=-1)
    return box, (d <= radius).transpose(2, 1, 0)


def paint(ph: Phantom, shape, value: float | None, label: int | None, within: np.ndarray | None = None) -> int:
    """Set values/labels where ``shape`` (and the optional full-size ``within`` mask) hold.

    Returns the number of voxels painted.
    """
    if shape is None:
        return 0
    box, mask = shape
    if within is not None:
        mask = mask & within[box]
    if value is not None:
        ph.values[box][mask] = value
    if label is not None:
        ph.labels[box][mask] = label
    return int(mask.sum())


def _sphere_in(rng: np.random.Generator, center, radii, size_mm: float, shrink: float = 0.55) -> np.ndarray:
    """A lesion centre well inside an organ ellipsoid."""
    c, r = np.asarray(center, float), np.asarray(radii, float)
    room = np.maximum(r - size_mm / 2, r * 0.2) * shrink
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction) + 1e-9
    return c + direction * room * rng.uniform(0, 1) ** 0.5


# ------------------------------------------------------------------ chest CT
CHEST_ORGANS = {
    # name: (centre (x, y, z) mm, radii (x, y, z) mm)
    "lung_right": ((-68.0, -2.0, 55.0), (50.0, 70.0, 95.0)),
    "lung_left": ((70.0, -2.0, 55.0), (46.0, 70.0, 95.0)),
    "heart": ((22.0, -30.0, 0.0), (55.0, 48.0, 45.0)),
    "liver": ((-55.0, 0.0, -80.0), (80.0, 72.0, 50.0)),
    "kidney_right": ((-62.0, 48.0, -110.0), (22.0, 28.0, 38.0)),
    "kidney_left": ((62.0, 48.0, -105.0), (22.0, 28.0, 38.0)),
}
HU = {"air": -1000.0, "lung": -850.0, "fat": -100.0, "soft": 40.0, "heart": 45.0, "liver": 60.0, "kidney": 30.0,
      "bone": 700.0, "fluid": 10.0, "cyst": 5.0, "solid": 35.0, "consolidation": 25.0, "tube": 250.0, "metal": 2500.0,
      "line": 1200.0}


def chest(grid: Grid, rng: np.random.Generator, scale: float = 1.0) -> Phantom:
    """Chest and upper abdomen: body wall, fat, lungs, heart, liver, kidneys, spine, trachea."""
    values = np.full(grid.shape, HU["air"], dtype=np.float32)
    labels = np.zeros(grid.shape, dtype=np.int16)
    ph = Phantom(grid, values, labels)
    jitter = rng.uniform(0.95, 1.05, size=2)
    z0, z1 = grid.axes()[0][0] - 1, grid.axes()[0][-1] + 1
    body_r = (150.0 * scale * jitter[0], 110.0 * scale * jitter[1])
    # body: elliptic cylinder, fat rim then soft tissue
    paint(ph, ellipsoid(grid, (0, 0, 0), (body_r[0], body_r[1], 1e4)), HU["fat"], ORGAN_LABELS["body"])
    paint(ph, ellipsoid(grid, (0, 0, 0), (body_r[0] - 12, body_r[1] - 12, 1e4)), HU["soft"], None)
    organs = {}
    for name, (c, r) in CHEST_ORGANS.items():
        c = tuple(v * scale for v in c)
        r = tuple(v * scale for v in r)
        organs[name] = (c, r)
        value = HU["lung"] if name.startswith("lung") else HU["heart" if name == "heart" else name.split("_")[0]]
        paint(ph, ellipsoid(grid, c, r), value, ORGAN_LABELS[name])
    # the heart sits between the lungs: draw it again over them
    c, r = organs["heart"]
    paint(ph, ellipsoid(grid, c, r), HU["heart"], ORGAN_LABELS["heart"])
    spine_c = (0.0, 82.0 * scale)
    paint(ph, cylinder_z(grid, spine_c[0], spine_c[1], 17.0 * scale, z0, z1), HU["bone"], ORGAN_LABELS["spine"])
    paint(ph, cylinder_z(grid, spine_c[0], spine_c[1] + 4, 6.0 * scale, z0, z1), HU["soft"], None)
    paint(ph, cylinder_z(grid, 0.0, -28.0 * scale, 8.0 * scale, 70.0 * scale, z1), HU["air"], None)  # trachea
    organs["spine"] = ((spine_c[0], spine_c[1], 0.0), (17.0 * scale, 17.0 * scale, 1e4))
    ph.organs = organs
    return ph


def _side_of(x: float) -> str:
    return "left" if x > 0 else "right"


def _lobe(ph: Phantom, lung: str, z: float) -> str:
    c, r = ph.organs[lung]
    return "upper lobe" if z > c[2] else "lower lobe"


def add_chest_lesion(ph: Phantom, rng: np.random.Generator, kind: str, side: str | None, index: int) -> Finding | None:
    """Insert one lesion or device into a chest phantom; returns its truth (or None if it missed)."""
    label = LESION_LABEL_BASE + index
    g = ph.grid
    lungs = {"right": "lung_right", "left": "lung_left"}
    if kind in ("nodule", "mass") and side in lungs:
        lung = lungs[side]
        c, r = ph.organs[lung]
        size = float(round(rng.uniform(4, 20) if kind == "nodule" else rng.uniform(30, 50), 0))
        centre = _sphere_in(rng, c, r, size)
        n = paint(ph, ellipsoid(g, centre, (size / 2,) * 3), HU["solid"], label, within=None)
        return Finding(kind, "lung", side, size, label, location=f"{side} {_lobe(ph, lung, centre[2])}") if n else None
    if kind in ("mass", "cyst") and side is None:
        organ = "liver"
        c, r = ph.organs["liver"]
        size = float(round(rng.uniform(25, 60) if kind == "mass" else rng.uniform(8, 30), 0))
        centre = _sphere_in(rng, c, r, size)
        value = HU["solid"] + 20 if kind == "mass" else HU["cyst"]
        n = paint(ph, ellipsoid(g, centre, (size / 2,) * 3), value, label)
        return Finding(kind, organ, None, size, label, location="liver") if n else None
    if kind == "cyst" and side in ("left", "right"):
        kidney = f"kidney_{side}"
        c, r = ph.organs[kidney]
        size = float(round(rng.uniform(8, 25), 0))
        centre = _sphere_in(rng, c, r, size, shrink=0.4)
        n = paint(ph, ellipsoid(g, centre, (size / 2,) * 3), HU["cyst"], label)
        return Finding(kind, "kidney", side, size, label, location=f"{side} kidney") if n else None
    if kind == "effusion":
        sides = ["left", "right"] if side == "bilateral" else [side]
        severity = str(rng.choice(["small", "moderate", "large"]))
        frac = {"small": 0.45, "moderate": 0.1, "large": -0.3}[severity]
        total = 0
        for s in sides:
            c, r = ph.organs[lungs[s]]
            lung_mask = ph.labels == ORGAN_LABELS[lungs[s]]
            z, y, _ = g.axes()
            region = (y[None, :, None] > c[1] + frac * r[1]) & (z[:, None, None] < c[2] - (0.5 * frac) * r[2])
            total += paint(ph, ellipsoid(g, c, r), HU["fluid"], label, within=lung_mask & region)
        return Finding("effusion", "pleura", side, None, label, severity=severity,
                       location=f"{side} pleural space") if total else None
    if kind == "pneumothorax" and side in lungs:
        c, r = ph.organs[lungs[side]]
        severity = str(rng.choice(["small", "moderate"]))
        frac = {"small": -0.45, "moderate": -0.1}[severity]
        lung_mask = ph.labels == ORGAN_LABELS[lungs[side]]
        z, y, _ = g.axes()
        region = (y[None, :, None] < c[1] + frac * r[1]) & (z[:, None, None] > c[2] + 0.2 * r[2])
        n = paint(ph, ellipsoid(g, c, r), HU["air"], label, within=lung_mask & region)
        return Finding("pneumothorax", "pleura", side, None, label, severity=severity,
                       location=f"{side} apex") if n else None
    if kind == "consolidation" and side in lungs:
        lung = lungs[side]
        c, r = ph.organs[lung]
        size = float(round(rng.uniform(30, 60), 0))
        centre = _sphere_in(rng, c, r, size, shrink=0.5)
        lung_mask = ph.labels == ORGAN_LABELS[lung]
        n = paint(ph, ellipsoid(g, centre, (size / 2, size / 2.5, size / 2)), HU["consolidation"], label, within=lung_mask)
        return Finding("consolidation", "lung", side, None, label, location=f"{side} {_lobe(ph, lung, centre[2])}") if n else None
    if kind == "fracture":
        c, r = ph.organs["spine"]
        z = float(rng.uniform(-60, 60))
        spine_mask = ph.labels == ORGAN_LABELS["spine"]
        box = _bbox(g, np.array([c[0] - r[0], c[1] - r[1], z - 2.5]), np.array([c[0] + r[0], c[1] + r[1], z + 2.5]))
        if box is None:
            return None
        shape = (box, np.ones(tuple(s.stop - s.start for s in box), dtype=bool))
        n = paint(ph, shape, 150.0, label, within=spine_mask)
        level = "upper thoracic" if z > 20 else ("lower thoracic" if z > -40 else "upper lumbar")
        return Finding("fracture", "spine", "midline", None, label, location=f"{level} vertebral body") if n else None
    if kind == "endotracheal_tube":
        top = g.axes()[0][-1]
        n = paint(ph, segment(g, (0, -28, top), (0, -28, 85), 4.0), HU["tube"], label)
        return Finding(kind, "trachea", "midline", None, label, category="device", location="trachea") if n else None
    if kind == "central_line":
        top = g.axes()[0][-1]
        sx = 1 if side == "left" else -1  # a jugular line from the patient's left or right (x grows to the left)
        n = paint(ph, segment(g, (sx * 45, -35, top), (sx * 12, -38, 45), 1.6), HU["line"], label)
        return Finding(kind, "superior vena cava", "left" if sx > 0 else "right", None, label, category="device",
                       location="superior vena cava") if n else None
    if kind == "pacemaker":
        sx = -1 if side == "right" else 1
        n = paint(ph, ellipsoid(g, (sx * 75, -88, 100), (20, 5, 16)), HU["metal"], label)
        where = "left" if sx > 0 else "right"
        return Finding(kind, "chest wall", where, None, label, category="device",
                       location=f"{where} chest wall") if n else None
    if kind == "chest_tube" and side in lungs:
        sx = 1 if side == "left" else -1
        n = paint(ph, segment(g, (sx * 140, 0, -10), (sx * 75, 5, 100), 3.0), HU["tube"], label)
        return Finding(kind, "pleura", side, None, label, category="device", location=f"{side} pleural space") if n else None
    return None


# ------------------------------------------------------------------ brain MR
MR_SIGNAL = {"background": 0.0, "scalp": 520.0, "skull": 40.0, "csf": 900.0, "gray": 560.0, "white": 380.0,
             "mass": 720.0, "cyst": 920.0, "edema": 680.0}


def brain(grid: Grid, rng: np.random.Generator) -> Phantom:
    """Head: scalp, skull, gray and white matter, lateral ventricles (T2-like contrast)."""
    values = np.full(grid.shape, MR_SIGNAL["background"], dtype=np.float32)
    labels = np.zeros(grid.shape, dtype=np.int16)
    ph = Phantom(grid, values, labels)
    s = rng.uniform(0.95, 1.05)
    head = ((0.0, 0.0, 0.0), (74.0 * s, 92.0 * s, 68.0 * s))
    paint(ph, ellipsoid(grid, *head), MR_SIGNAL["scalp"], ORGAN_LABELS["skull"])
    paint(ph, ellipsoid(grid, head[0], tuple(v - 5 for v in head[1])), MR_SIGNAL["skull"], ORGAN_LABELS["skull"])
    brain_r = tuple(v - 10 for v in head[1])
    paint(ph, ellipsoid(grid, head[0], brain_r), MR_SIGNAL["gray"], ORGAN_LABELS["brain"])
    paint(ph, ellipsoid(grid, head[0], tuple(v * 0.72 for v in brain_r)), MR_SIGNAL["white"], None)
    for sx in (-1, 1):
        paint(ph, ellipsoid(grid, (sx * 11.0, -4.0, 10.0), (6.0, 24.0, 11.0)), MR_SIGNAL["csf"], ORGAN_LABELS["ventricles"])
    ph.organs = {"brain": (head[0], brain_r)}
    return ph


def add_brain_lesion(ph: Phantom, rng: np.random.Generator, kind: str, side: str, index: int) -> Finding | None:
    label = LESION_LABEL_BASE + index
    c, r = ph.organs["brain"]
    sx = 1 if side == "left" else -1
    hemi_c = (sx * r[0] * 0.45, c[1], c[2])
    hemi_r = (r[0] * 0.4, r[1] * 0.7, r[2] * 0.6)
    size = float(round(rng.uniform(12, 35) if kind == "mass" else rng.uniform(6, 18), 0))
    centre = _sphere_in(rng, hemi_c, hemi_r, size, shrink=0.6)
    lobe = "frontal" if centre[1] < -25 else ("occipital" if centre[1] > 35 else ("parietal" if centre[2] > 15 else "temporal"))
    if kind == "mass":
        paint(ph, ellipsoid(ph.grid, centre, (size * 0.85,) * 3), MR_SIGNAL["edema"], None,
              within=ph.labels == ORGAN_LABELS["brain"])
        n = paint(ph, ellipsoid(ph.grid, centre, (size / 2,) * 3), MR_SIGNAL["mass"], label)
    else:
        n = paint(ph, ellipsoid(ph.grid, centre, (size / 2,) * 3), MR_SIGNAL["cyst"], label)
    return Finding(kind, "brain", side, size, label, location=f"{side} {lobe} lobe") if n else None


def add_noise(ph: Phantom, rng: np.random.Generator, sigma: float) -> None:
    ph.values += rng.normal(0.0, sigma, size=ph.values.shape).astype(np.float32)
