# Zero-shot DAVIS 2017 val with frozen PE-Spatial-B16 tokens (DINO's eval_video_segmentation
# protocol). Run: python tools/test_davis.py configs/davis/pe_spatial_b16_davis.py \
#     --checkpoint checkpoints/PE-Spatial-B16-*.pt --data-root data/DAVIS
_base_ = ['../_base_/backbones/pe_spatial_b16.py']
custom_imports = dict(imports=['pe_dense.backbone'], allow_failed_imports=False)

# backbone: the base's pe_backbone (official checkpoint via init_cfg or --checkpoint).
# layer: block whose tokens are compared (-1: the spatially aligned last block);
# size: short side of the network input; the rest is the propagation protocol.
propagation = dict(layer=-1, size=480, n_last=7, topk=5, radius=12, temperature=0.1)
randomness = dict(seed=0, deterministic=False)
