"""Frozen teachers producing alignment targets."""
