"""pe_dense: Meta's Perception Encoder as a dense-prediction backbone for OpenMMLab.

Importing ``pe_dense`` (or any part of it) registers components and changes nothing else in
the process. Configs import the part they need, each matching an install extra:

- ``pe_dense.backbone``: ``PE`` alone (torch, mmengine, timm);
- ``pe_dense.det`` / ``pe_dense.seg``: MMDetection / MMSegmentation parts;
- ``pe_dense.align`` / ``pe_dense.core``: alignment / distillation and PE-Core CLIP training;
- ``pe_dense.all``: everything.

The safe-resume allowlist and crash-safe checkpoint writes are switched on by the tools
(``pe_dense.engine.enable_checkpoint_io``), not by importing. The one thing importing adds,
like a registry entry, is the ``pe_dense::`` config prefix (below).
"""
__version__ = '0.1.0'


def _add_config_prefix() -> None:
    """MMEngine 0.10.7 resolves ``pkg::path`` in ``_base_`` only for the packages of its
    ``MODULE2PACKAGE`` table; adding pe_dense lets another project's config inherit
    ``pe_dense::_base_/backbones/...`` from the installed ``pe_dense/.mim/configs``. An
    addition: no existing entry changes. The process must import pe_dense before it reads
    such a config (pe_dense's tools do)."""
    from mmengine.config import utils
    utils.MODULE2PACKAGE.setdefault('pe_dense', 'pe_dense')


_add_config_prefix()
