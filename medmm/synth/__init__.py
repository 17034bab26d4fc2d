"""medmm.synth: synthetic studies with known ground truth (demo data and test bed).

``synthesize(out, n, seed)`` writes CT series, chest radiographs and brain MR series as real
DICOM, NIfTI copies with label maps, reports consistent with the truth and a manifest.
Names are imported lazily (``medmm.synth.reports`` alone needs only numpy).
"""

from __future__ import annotations

from medmm._lazy import lazy_exports

_EXPORTS = {name: "medmm.synth.generate" for name in ("KINDS", "SMALL", "SynthConfig", "make_study", "synthesize")}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports("medmm.synth", _EXPORTS, globals())
