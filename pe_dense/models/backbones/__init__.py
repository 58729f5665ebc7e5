"""PE backbone (the tower), RoPE, position embeddings and checkpoint conversion."""
