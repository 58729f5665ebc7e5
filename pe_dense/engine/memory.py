"""Per-GPU memory of PE-G DETA training under DDP vs FSDP, computed (docs/distributed.md).

``python -m pe_dense.engine.memory`` prints the table. Model: PE-Spatial-G (width 1536,
depth 50, mlp 8960). Assumptions: fp32 master weights and grads, AdamW with 2 fp32 states,
bf16 backbone activations, one image per GPU, activation checkpointing per backbone block
(stored: every block's input; live: one block's internals during recompute), windowed
attention via SDPA (no N^2 score matrix kept). DDP keeps a second fp32 copy of the gradients
in its communication buckets (``gradient_as_bucket_view=False``, the default). The DETA
deformable encoder (6 layers, 256 channels, 5 levels at strides 8-128, 8 heads x 5 levels x
4 points, FFN 2048) runs in fp32 without checkpointing, as the official DETA_pe code.
"""
import math

GB = 1024 ** 3
WIDTH, DEPTH, MLP = 1536, 50, 8960
ENC_LAYERS, ENC_DIM, ENC_FFN, ENC_STRIDES = 6, 256, 2048, (8, 16, 32, 64, 128)
ENC_SAMPLES = 8 * 5 * 4  # heads x levels x points
# floats kept per token and encoder layer for backward: 7 of width 256 (query + pos, value,
# sampled output, output projection, norm 1, FFN output, norm 2), offsets and locations
# (2 x 2 per sample), attention logits and weights (2 per sample), FFN hidden before and
# after the ReLU
ENC_FLOATS = 7 * ENC_DIM + 6 * ENC_SAMPLES + 2 * ENC_FFN


def pe_g_params(patch: int = 14) -> int:
    block = 4 * WIDTH * WIDTH + 4 * WIDTH + 2 * WIDTH * MLP + MLP + WIDTH + 4 * WIDTH
    return DEPTH * block + 3 * patch * patch * WIDTH


def activation_bytes(px: int, checkpoint: bool = True, batch: int = 1, act_bytes: int = 2,
                     patch: int = 14) -> int:
    """Backbone activations kept for backward."""
    tokens = math.ceil(px / patch) ** 2
    inside = (8 * WIDTH + 2 * MLP) * tokens * batch * act_bytes  # ln, qkv, attn out, mlp, residual
    stored = DEPTH * WIDTH * tokens * batch * act_bytes
    return stored + inside if checkpoint else DEPTH * inside


def encoder_activation_bytes(px: int, batch: int = 1) -> int:
    """The deformable encoder's fp32 activations (not checkpointed) over all 5 levels."""
    tokens = sum(math.ceil(px / s) ** 2 for s in ENC_STRIDES)
    return ENC_LAYERS * tokens * ENC_FLOATS * 4 * batch


def per_gpu_bytes(px: int, n_gpus: int, strategy: str, checkpoint: bool = True,
                  patch: int = 14, encoder: bool = False) -> dict:
    if strategy not in ('ddp', 'fsdp'):
        raise ValueError(f"strategy must be 'ddp' or 'fsdp', got {strategy!r}")
    p = pe_g_params(patch)
    shard = n_gpus if strategy == 'fsdp' else 1
    out = dict(params=4 * p / shard, grads=4 * p / shard,
               buckets=4 * p if strategy == 'ddp' else 0, optimizer=8 * p / shard,
               activations=activation_bytes(px, checkpoint, patch=patch),
               encoder=encoder_activation_bytes(px) if encoder else 0)
    if strategy == 'fsdp':  # one block gathered unsharded (bf16 params + grads) at a time
        out['gathered'] = 2 * 2 * p / DEPTH
    out['total'] = sum(out.values())
    return out


def table() -> str:
    rows = ['| px (patch) | GPUs | strategy | params | grads | DDP buckets | AdamW states | '
            'backbone activations | deformable encoder | total (GiB) |',
            '|---|---|---|---|---|---|---|---|---|---|']
    for px, patch, enc in ((1024, 14, False), (1728, 14, False), (1824, 16, True)):
        for n in (8, 64):
            for s in ('ddp', 'fsdp'):
                m = per_gpu_bytes(px, n, s, patch=patch, encoder=enc)
                cells = [m[k] / GB for k in ('params', 'grads', 'buckets', 'optimizer',
                                             'activations', 'encoder', 'total')]
                rows.append(f'| {px} ({patch}) | {n} | {s} | '
                            + ' | '.join(f'{c:.1f}' for c in cells) + ' |')
    return '\n'.join(rows)


if __name__ == '__main__':
    print(table())
