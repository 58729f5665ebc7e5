"""Segmentation and depth heads registered in MMSegmentation."""
