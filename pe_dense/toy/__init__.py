"""Generators of small datasets in real on-disk formats."""
