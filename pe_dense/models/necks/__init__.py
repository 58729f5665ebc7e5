"""Necks turning plain-ViT tokens into pyramids."""
