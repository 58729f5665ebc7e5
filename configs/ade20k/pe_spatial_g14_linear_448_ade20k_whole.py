# Same probe, whole-image inference: the short side is resized to 448 and the image padded
# to a multiple of the patch (padding removed again before the metric).
_base_ = ['./pe_spatial_g14_linear_448_ade20k.py']

model = dict(
    data_preprocessor=dict(test_cfg=dict(size_divisor={{_base_.patch_size}})),
    test_cfg=dict(_delete_=True, mode='whole'))
