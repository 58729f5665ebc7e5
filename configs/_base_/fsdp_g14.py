# FSDP for G-size PE backbones (1.9B params): shard params, grads and AdamW states over the GPUs.
# Use with MMEngine's FlexibleRunner: `runner_type = 'FlexibleRunner'` is set here; a config
# adds this file to its _base_ and keeps everything else. Activation checkpointing: the PE
# backbone's own per-block `with_cp=True` (set below), so no FSDP check_fn is needed.
# Memory per setting (computed): docs/distributed.md.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        auto_wrap_policy=dict(type='torch.distributed.fsdp.wrap.size_based_auto_wrap_policy',
                              min_num_params=int(2e7)),  # one PE-G block is ~37M params
        use_orig_params=True),  # keeps per-parameter lr/decay groups (layer decay) valid
    state_dict_type='FULL_STATE_DICT')
model = dict(backbone=dict(with_cp=True))
env_cfg = dict(dist_cfg=dict(backend='nccl'))
