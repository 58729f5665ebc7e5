"""Metrics (DAVIS J&F, zero-shot, retrieval)."""
