"""pe_dense: Meta's Perception Encoder as a dense-prediction backbone for OpenMMLab.

Importing ``pe_dense`` (or any part of it) registers components and changes nothing else in
the process. Configs import the part they need, each matching an install extra:

- ``pe_dense.backbone``: ``PE`` alone (torch, mmengine, timm);
- ``pe_dense.det`` / ``pe_dense.seg``: MMDetection / MMSegmentation parts;
- ``pe_dense.align`` / ``pe_dense.core``: alignment / distillation and PE-Core CLIP training;
- ``pe_dense.all``: everything.

The safe-resume allowlist and crash-safe checkpoint writes are switched on by the tools
(``pe_dense.engine.enable_checkpoint_io``), not by importing.
"""
__version__ = '0.1.0'
