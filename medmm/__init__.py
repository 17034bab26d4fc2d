"""medmm: multimodal LLMs on medical images — correct loaders, probing, report checking.

Layers (data flows one way): ``medmm.imaging`` → models → regions/finetune/probe/reports
→ audit → apps. A lower layer never imports a higher one.
"""

__version__ = "0.1.0"
