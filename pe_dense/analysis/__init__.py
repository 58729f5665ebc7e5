"""Layer-wise diagnostics and feature visualisation."""
