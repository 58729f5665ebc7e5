# PE-Core-B16: 98 -> 154 -> 224 -> 336 px (evaluated at its native 224 px).
_base_ = ['./_base_/pe_core_clip.py']
