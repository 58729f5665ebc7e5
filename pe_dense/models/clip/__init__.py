"""PE-Core CLIP: text tower and the two-tower model."""
