"""Sigmoid cross-entropy with the federated loss of LVIS (Zhou et al. 2021), for mmdet's BBoxHead.

The official PE Mask R-CNN LVIS configs (``apps/detection/projects/ViTDet/configs/LVIS/``) train
the box classifier with detectron2's ``use_sigmoid_ce=True, use_fed_loss=True`` and class
weights ``image_count ** 0.5`` (``get_fed_loss_cls_weights(..., 0.5)``). Per batch of RoIs:

* the classifier keeps ``num_classes + 1`` outputs (the last, background, is never trained);
* the loss is the per-class BCE with one-hot targets (background RoIs: all zeros), summed
  over the *federated* classes only and divided by the number of RoIs;
* the federated classes are the labels present in the batch (background included in the
  count) plus negatives drawn without replacement with probability ~ weight until there are
  ``num_fed_loss_classes`` (50) (none drawn when the batch already has that many);
* scores at test time are the sigmoid of each class output.
"""
import json
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn


def lvis_fed_loss_weights(ann_file: str, power: float = 0.5) -> Tensor:
    """``image_count ** power`` per category, ordered by category id (the LVIS label order)."""
    try:
        with open(ann_file) as f:
            cats = json.load(f)['categories']
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f'{ann_file}: cannot read LVIS categories for the federated loss '
                         f'weights: {err}') from err
    missing = [c.get('id') for c in cats if 'image_count' not in c]
    if missing:
        raise ValueError(f'{ann_file}: categories {missing[:5]} have no image_count '
                         '(the federated loss needs LVIS v1 annotations)')
    counts = [c['image_count'] for c in sorted(cats, key=lambda c: c['id'])]
    return torch.tensor(counts, dtype=torch.float32) ** power


def federated_classes(labels: Tensor, num_classes: int, num_fed_classes: int,
                      weights: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Classes the loss is computed on: the distinct ``labels`` plus negatives sampled ~
    ``weights`` without replacement, ``num_fed_classes`` in all.

    As in detectron2, the background label (``num_classes``) counts towards the total when a
    background RoI is present, so such a batch gets one foreground class less; it is returned
    and ignored by the caller's mask.
    """
    present = torch.unique(labels)
    if len(present) >= num_fed_classes:
        return present
    prob = labels.new_zeros(num_classes + 1, dtype=torch.float32)
    prob[:num_classes] = weights.to(labels.device, torch.float32)
    prob[present] = 0
    drawn = torch.multinomial(prob, num_fed_classes - len(present), replacement=False,
                              generator=generator)
    return torch.cat([present, drawn])


@MODELS.register_module()
class FederatedSigmoidCELoss(nn.Module):
    """Sigmoid CE restricted to federated classes (see the module docstring).

    Args:
        num_classes: foreground classes (LVIS v1: 1203).
        ann_file: LVIS annotation json whose ``categories[*].image_count`` give the weights
            (read at the first training step, so testing does not need it).
        class_weights: the weights directly (instead of ``ann_file``), ordered by label.
        freq_weight_power: exponent on ``image_count`` (official 0.5).
        num_fed_loss_classes: classes per batch (detectron2's default 50).
        use_fed_loss: False gives plain sigmoid CE over all classes.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, num_classes: int, ann_file: Optional[str] = None,
                 class_weights: Optional[Sequence[float]] = None,
                 freq_weight_power: float = 0.5, num_fed_loss_classes: int = 50,
                 use_fed_loss: bool = True, loss_weight: float = 1.0):
        super().__init__()
        self.num_classes = num_classes
        self.num_fed_loss_classes = num_fed_loss_classes
        self.use_fed_loss = use_fed_loss
        self.loss_weight = loss_weight
        self.custom_cls_channels = True
        self.custom_activation = True
        self.custom_accuracy = True
        if use_fed_loss and (ann_file is None) == (class_weights is None):
            raise ValueError('FederatedSigmoidCELoss: give exactly one of ann_file and '
                             'class_weights')
        self.ann_file = ann_file
        self.freq_weight_power = freq_weight_power
        weights = None if class_weights is None else torch.as_tensor(class_weights).float()
        self.register_buffer('fed_weights', weights, persistent=False)
        if weights is not None:
            self._check_weights(weights)

    def _check_weights(self, weights: Tensor) -> None:
        if weights.numel() != self.num_classes:
            raise ValueError(f'FederatedSigmoidCELoss: {weights.numel()} class weights (from '
                             f'{self.ann_file or "class_weights"}) for {self.num_classes} classes')

    def class_weights(self, device) -> Tensor:
        """The sampling weights; read from ``ann_file`` on first use (training only)."""
        if self.fed_weights is None:
            weights = lvis_fed_loss_weights(self.ann_file, self.freq_weight_power)
            self._check_weights(weights)
            self.fed_weights = weights.to(device)
        return self.fed_weights

    def get_cls_channels(self, num_classes: int) -> int:
        return num_classes + 1  # detectron2 keeps the (unused) background output

    def get_activation(self, cls_score: Tensor) -> Tensor:
        return cls_score.sigmoid()  # mmdet's NMS drops the last (background) column

    def get_accuracy(self, cls_score: Tensor, labels: Tensor) -> dict:
        fg = labels < self.num_classes
        pred = cls_score[:, :-1].argmax(1)
        acc = (pred[fg] == labels[fg]).float().mean() * 100 if fg.any() else cls_score.new_zeros(())
        return dict(acc_fg=acc)

    def forward(self, cls_score: Tensor, labels: Tensor, label_weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """Sum of BCE over RoIs x federated classes, divided by the number of RoIs.

        ``label_weight`` (all ones in Mask R-CNN) multiplies each RoI's terms; ``avg_factor``
        is ignored: detectron2 divides by the number of RoIs.
        """
        n, k = cls_score.shape[0], self.num_classes
        if n == 0:
            return cls_score.sum() * 0
        target = F.one_hot(labels.long(), k + 1)[:, :k].to(cls_score.dtype)
        loss = F.binary_cross_entropy_with_logits(cls_score[:, :k], target, reduction='none')
        if self.use_fed_loss:
            keep = federated_classes(labels, k, self.num_fed_loss_classes,
                                     self.class_weights(cls_score.device))
            mask = cls_score.new_zeros(k + 1)
            mask[keep] = 1
            loss = loss * mask[None, :k]
        if label_weight is not None:
            loss = loss * label_weight[:, None].to(loss.dtype)
        return self.loss_weight * loss.sum() / n
