"""Spatial alignment and distillation models."""
