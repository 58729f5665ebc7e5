"""pe_dense: Meta's Perception Encoder as a dense-prediction backbone for OpenMMLab.

Importing the package registers every component (backbone, necks, heads, datasets,
metrics, hooks, optimizer constructors) in the MMEngine / MMDetection / MMSegmentation
registries, so configs only need
``custom_imports = dict(imports=['pe_dense'], allow_failed_imports=False)``.
"""
__version__ = '0.1.0'

from . import engine  # noqa: F401,E402
from . import models  # noqa: F401,E402
from . import datasets  # noqa: F401,E402
from . import evaluation  # noqa: F401,E402
