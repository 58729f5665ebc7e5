"""Label propagation for video object segmentation."""
