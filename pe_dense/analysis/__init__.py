"""Layer-wise diagnostics (which layer for which task) and feature visualisation.

``layer_sweep`` scores layers with the probes of ``probes``/``tasks`` over features cached by
``feature_cache``; ``feature_pca`` draws LCh PCA pictures; ``compare`` computes linear CKA.
"""
