# PE-Core-L14: 98 -> 154 -> 224 -> 336 px.
_base_ = ['./_base_/pe_core_clip.py']
arch = 'PE-Core-L14-336'
model = dict(vision=dict(arch=arch), text=dict(arch=arch))
img_size = 336
test_pipeline = [dict(type='ClipLoadImage'), dict(type='ClipResize', scale=img_size),
                 dict(type='PackClipInputs')]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
