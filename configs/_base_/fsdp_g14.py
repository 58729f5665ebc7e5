# FSDP2 for G-size PE backbones (1.9B params): shard params, grads and optimizer states over the
# ranks with torch.distributed.fsdp.fully_shard, one unit per PE block (~37M params in PE-G) plus
# the root for the rest (neck, decoder, head). Strategy: pe_dense/engine/fsdp2.py (MMEngine
# 0.10.7's FSDPStrategy is FSDP1 and needs CUDA; this one also runs on CPU/gloo). A config adds
# this file to its _base_ and keeps everything else. Checkpoints are full (unsharded) MMEngine
# files that a single process resumes. Activation checkpointing: the PE backbone's per-block
# `with_cp=True`. Memory per setting (computed): docs/distributed.md.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='FullyShardStrategy',
    unit_types=['ResidualAttentionBlock'],  # PE's block (pe_dense/models/backbones/pe.py)
    reshard_after_forward=True)
model = dict(backbone=dict(with_cp=True))
env_cfg = dict(dist_cfg=dict(backend='nccl'))
