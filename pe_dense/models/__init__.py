"""Models: generic parts register in MMEngine's root registry, task parts in mmdet/mmseg.

Nothing is imported here, so ``pe_dense.models.backbones`` needs neither mmdet nor mmseg;
``pe_dense.det`` / ``seg`` / ``align`` / ``core`` import the subpackages of their task.
"""
