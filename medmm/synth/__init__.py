"""medmm.synth: synthetic studies with known ground truth (demo data and test bed).

``synthesize(out, n, seed)`` writes CT series, chest radiographs and brain MR series as real
DICOM, NIfTI copies with label maps, reports consistent with the truth and a manifest.
"""

from medmm.synth.generate import KINDS, SMALL, SynthConfig, make_study, synthesize

__all__ = ["KINDS", "SMALL", "SynthConfig", "make_study", "synthesize"]
