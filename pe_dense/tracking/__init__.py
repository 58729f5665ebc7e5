"""Label propagation for video object segmentation (zero-shot DAVIS tracking)."""
from .label_propagation import (LabelPropagator, neighbourhood_mask, onehot_at_grid,  # noqa
                                propagate, upsample_labels)
