"""The released PE vision towers (REFERENCE section 1) and custom-size resolution."""
from typing import Dict, Union

# name: (patch, width, depth, heads, mlp, cls token, pool, out dim, LayerScale, ln_post, native px)
_TABLE = {
    'PE-Core-T16-384': (16, 192, 12, 3, 768, True, 'attn', 512, None, True, 384),
    'PE-Core-S16-384': (16, 384, 12, 6, 1536, True, 'attn', 512, None, True, 384),
    'PE-Core-B16-224': (16, 768, 12, 12, 3072, True, 'attn', 1024, None, True, 224),
    'PE-Core-L14-336': (14, 1024, 24, 16, 4096, True, 'attn', 1024, None, True, 336),
    'PE-Core-G14-448': (14, 1536, 50, 16, 8960, False, 'attn', 1280, None, True, 448),
    'PE-Lang-L14-448': (14, 1024, 23, 16, 4096, True, None, None, 0.1, False, 448),
    'PE-Lang-G14-448': (14, 1536, 47, 16, 8960, False, None, None, 0.1, False, 448),
    'PE-Spatial-T16-512': (16, 192, 12, 3, 768, True, None, None, None, False, 512),
    'PE-Spatial-S16-512': (16, 384, 12, 6, 1536, True, None, None, None, False, 512),
    'PE-Spatial-B16-512': (16, 768, 12, 12, 3072, True, None, None, None, False, 512),
    'PE-Spatial-L14-448': (14, 1024, 24, 16, 4096, True, None, None, None, False, 448),
    'PE-Spatial-G14-448': (14, 1536, 50, 16, 8960, False, None, None, 0.1, False, 448),
}
_FIELDS = ('patch_size', 'width', 'depth', 'heads', 'mlp_dim', 'cls_token', 'pool',
           'out_dim', 'layer_scale', 'ln_post', 'img_size')

ARCH_SETTINGS: Dict[str, dict] = {name: dict(zip(_FIELDS, row)) for name, row in _TABLE.items()}

# timm names of the same towers; ``arch=`` accepts them too (with or without the ``.fb`` tag).
TIMM_NAMES = {
    'PE-Core-T16-384': 'vit_pe_core_tiny_patch16_384',
    'PE-Core-S16-384': 'vit_pe_core_small_patch16_384',
    'PE-Core-B16-224': 'vit_pe_core_base_patch16_224',
    'PE-Core-L14-336': 'vit_pe_core_large_patch14_336',
    'PE-Core-G14-448': 'vit_pe_core_gigantic_patch14_448',
    'PE-Lang-L14-448': 'vit_pe_lang_large_patch14_448',
    'PE-Lang-G14-448': 'vit_pe_lang_gigantic_patch14_448',
    'PE-Spatial-T16-512': 'vit_pe_spatial_tiny_patch16_512',
    'PE-Spatial-S16-512': 'vit_pe_spatial_small_patch16_512',
    'PE-Spatial-B16-512': 'vit_pe_spatial_base_patch16_512',
    'PE-Spatial-L14-448': 'vit_pe_spatial_large_patch14_448',
    'PE-Spatial-G14-448': 'vit_pe_spatial_gigantic_patch14_448',
}

_FROM_TIMM = {timm: name for name, timm in TIMM_NAMES.items()}

_DEFAULTS = dict(cls_token=False, pool=None, out_dim=None, layer_scale=None, ln_post=False)


def resolve_arch(arch: Union[str, dict]) -> dict:
    """Settings of a released name (official or timm) or a complete custom dict (missing optional
    keys defaulted)."""
    if isinstance(arch, str):
        # a timm name, with or without timm/ and the pretrained tag (vit_pe_..._448.fb)
        name = _FROM_TIMM.get(arch.removeprefix('timm/').split('.')[0], arch)
        if name not in ARCH_SETTINGS:
            known = ', '.join(sorted(ARCH_SETTINGS))
            raise KeyError(f'Unknown PE arch {arch!r}. Known archs: {known}, or their timm names '
                           f'(vit_pe_spatial_gigantic_patch14_448, ...); or pass a dict with '
                           f'keys {_FIELDS}.')
        return dict(ARCH_SETTINGS[name])
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be a name or a dict, got {type(arch).__name__}')
    settings = dict(_DEFAULTS, **arch)
    unknown = set(settings) - set(_FIELDS)
    missing = [f for f in _FIELDS if f not in settings]
    if unknown or missing:
        raise KeyError(f'Custom PE arch: unknown keys {sorted(unknown)}, missing keys {missing}')
    if settings['width'] % settings['heads']:
        raise ValueError(f"Custom PE arch: width {settings['width']} is not divisible by "
                         f"heads {settings['heads']}")
    if (settings['width'] // settings['heads']) % 4:
        raise ValueError('Custom PE arch: head dim must be a multiple of 4 for 2D RoPE, got '
                         f"{settings['width'] // settings['heads']}")
    if settings['pool'] not in (None, 'attn'):
        raise ValueError(f"Custom PE arch: pool must be None or 'attn', got {settings['pool']!r}")
    return settings
