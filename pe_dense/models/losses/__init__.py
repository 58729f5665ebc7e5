"""Losses shared by the trainers."""
