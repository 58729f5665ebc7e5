"""Models: generic parts register in MMEngine's root registry, task parts in mmdet/mmseg."""
from . import backbones  # noqa: F401
from . import necks  # noqa: F401
from . import losses  # noqa: F401
from . import task_modules  # noqa: F401
from . import dense_heads  # noqa: F401
from . import detectors  # noqa: F401
from . import decode_heads  # noqa: F401
from . import clip  # noqa: F401
from . import teachers  # noqa: F401
from . import aligners  # noqa: F401
