"""Detectors (DETA) registered in MMDetection."""
