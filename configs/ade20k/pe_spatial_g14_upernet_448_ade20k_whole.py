# UperNet with whole-image inference (short side 448, padded to the patch multiple).
_base_ = ['./pe_spatial_g14_upernet_448_ade20k.py']

model = dict(
    data_preprocessor=dict(test_cfg=dict(size_divisor={{_base_.patch_size}})),
    test_cfg=dict(_delete_=True, mode='whole'))
