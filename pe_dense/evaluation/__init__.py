"""Metrics (DAVIS J&F, zero-shot, retrieval)."""
from .davis_metric import (DavisMetricError, evaluate_results, evaluate_sequence,  # noqa: F401
                           format_tables, summarize, write_csvs)
