"""The CLIP BPE tokenizer (open_clip ships the vocabulary) with PE's padding rules.

The official PE tokenizer lower-cases and cleans whitespace, wraps each text in SOT/EOT, pads
with 0 to the context length and, when too long, truncates and puts EOT in the last slot.
open_clip's ``SimpleTokenizer(clean='lower')`` does exactly that, so it is used unchanged.
"""
from typing import Sequence, Union

import torch
from open_clip.tokenizer import SimpleTokenizer


class PETokenizer:
    """Callable ``texts -> (N, context_length)`` LongTensor; refuses empty texts."""

    def __init__(self, context_length: int = 32):
        if context_length < 2:
            raise ValueError(f'context_length must hold SOT and EOT, got {context_length}')
        self.context_length = context_length
        self._tok = SimpleTokenizer(context_length=context_length, clean='lower')
        self.sot_token_id = self._tok.sot_token_id
        self.eot_token_id = self._tok.eot_token_id

    def __call__(self, texts: Union[str, Sequence[str]]) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise ValueError(f'text #{i} is empty or not a string: {t!r}')
        return self._tok(texts, context_length=self.context_length)


def fit_context(tokens: torch.Tensor, context_length: int, eot_token_id: int) -> torch.Tensor:
    """Re-pad or re-truncate tokens to another tower's context (teacher vs student)."""
    n = tokens.shape[1]
    if n <= context_length:
        return torch.nn.functional.pad(tokens, (0, context_length - n))
    out = tokens[:, :context_length].clone()
    cut = tokens[:, context_length:].ne(0).any(dim=1)  # texts that lost tokens need a new EOT
    out[cut, -1] = eot_token_id
    return out
