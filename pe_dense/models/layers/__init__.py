"""Small building blocks shared by several models."""
