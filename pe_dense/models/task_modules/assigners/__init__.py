"""DETA IoU-based one-to-many assigners."""
