"""Losses shared by the trainers."""
from .contrastive import ClipContrastiveLoss, ClipDistillLoss, masked_token_cosine_loss  # noqa: F401
from .pairwise_similarity import PairwiseSimilarityLoss, pairwise_cosine, pairwise_similarity_loss  # noqa: F401,E501
from .token_cosine import TokenCosineLoss, token_cosine_loss  # noqa: F401
from .federated_loss import FederatedSigmoidCELoss, federated_classes, lvis_fed_loss_weights  # noqa: F401,E501
