"""Metrics (DAVIS J&F, zero-shot, retrieval)."""
from .davis_metric import (DavisMetricError, evaluate_results, evaluate_sequence,  # noqa: F401
                           format_tables, summarize, write_csvs)
from .retrieval import ImageTextRetrieval  # noqa: F401,E402
from .zero_shot import ZeroShotAccuracy  # noqa: F401,E402
