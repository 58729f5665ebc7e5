"""Training hooks."""
from .progressive_resolution import ProgressiveResolutionHook  # noqa: F401,E402
from .rng_state import RNGStateHook  # noqa: F401,E402
from .nan_guard import NaNGuardHook, NonFiniteLossError  # noqa: F401,E402
from .export_student import ExportStudentHook  # noqa: F401,E402
from .drop_loaded_keys import DropLoadedKeysHook  # noqa: F401,E402
from .compile_model import CompileModelHook, move_compile_to_hook  # noqa: F401,E402
from .web_stream_resume import WebStreamResumeHook  # noqa: F401,E402
