"""PE-Core CLIP: text tower and the two-tower model."""
from .checkpoint import clip_to_official, official_to_clip
from .clip import PECLIP
from .data_preprocessor import ClipDataPreprocessor
from .text_tower import TEXT_CONFIGS, PETextTower, resolve_text_arch
from .tokenizer import PETokenizer, fit_context

__all__ = ['PECLIP', 'PETextTower', 'PETokenizer', 'ClipDataPreprocessor', 'TEXT_CONFIGS',
           'resolve_text_arch', 'fit_context', 'official_to_clip', 'clip_to_official']
