"""Datasets not covered by MMDetection/MMSegmentation."""
