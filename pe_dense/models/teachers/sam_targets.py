"""SAM 2.1 teacher: a grid of single-point prompts -> a map of per-point mask logits.

Each of the ``grid x grid`` (32 x 32 = 1024) positive points yields SAM's low-resolution
(256 x 256) mask logits; stacked, they give every pixel a 1024-dim descriptor "which point's
mask am I in", resampled to the student's token grid. Speed comes from running the image
encoder once per image, never upsampling masks to the image size (the predictor's costly
post-processing) and, by default, an exact factorised mask decoder
(``sam_fast_decoder.FactorisedMaskDecoder``) that does the prompt-independent image-side work
once per image instead of once per prompt.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS

from .sam_fast_decoder import FactorisedMaskDecoder

SAM21_CONFIGS = {
    't': 'configs/sam2.1/sam2.1_hiera_t.yaml',
    's': 'configs/sam2.1/sam2.1_hiera_s.yaml',
    'b+': 'configs/sam2.1/sam2.1_hiera_b+.yaml',
    'l': 'configs/sam2.1/sam2.1_hiera_l.yaml',
}
LOGIT_CLAMP = 32.0  # SAM2ImagePredictor clamps low-res logits to +-32


def _check_sam_state_dict(sd: dict, model: nn.Module, size: str, path: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = [f'{k}: {tuple(sd[k].shape)} vs {tuple(own[k].shape)}'
              for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(
            f'SAM 2.1 checkpoint {path} does not match size {size!r} '
            f'({len(missing)} missing, {len(unexpected)} unexpected, {len(shapes)} shape '
            f'mismatches; e.g. {(shapes + missing + unexpected)[:3]}); '
            'pick the size it was saved for')


def build_sam21(size: str, checkpoint: Optional[str] = None,
                image_size: Optional[int] = None) -> nn.Module:
    """SAM 2.1 of ``size`` ('t', 's', 'b+', 'l') from the sam2 package configs; random if no ckpt.

    ``image_size`` overrides SAM's 1024 px input (a multiple of 32): 256 px makes CPU tests and
    toy runs 16x cheaper; real targets use the default.
    """
    from sam2.build_sam import build_sam2
    if size not in SAM21_CONFIGS:
        raise ValueError(f'SAM 2.1 size must be one of {sorted(SAM21_CONFIGS)}, got {size!r}')
    overrides = []
    if image_size is not None:
        if image_size % 32:
            raise ValueError(f'SAM image_size must be a multiple of 32, got {image_size}')
        overrides.append(f'++model.image_size={int(image_size)}')
    model = build_sam2(SAM21_CONFIGS[size], ckpt_path=None, device='cpu', mode='eval',
                       hydra_overrides_extra=overrides)
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'SAM 2.1 checkpoint not found: {checkpoint}')
        obj = torch.load(checkpoint, map_location='cpu', weights_only=True)
        sd = obj.get('model', obj) if isinstance(obj, dict) else None
        if not isinstance(sd, dict):
            raise ValueError(f'SAM 2.1 checkpoint {checkpoint}: expected a dict with key "model"')
        _check_sam_state_dict(sd, model, size, checkpoint)
        model.load_state_dict(sd)
    return model


def grid_points(grid: int, resolution: int) -> torch.Tensor:
    """(grid*grid, 2) xy centres of a grid x grid partition of SAM's square input frame.

    SAM resizes any image to ``resolution`` x ``resolution``, so cell centres of the image map to
    ``(k + 0.5) * resolution / grid`` there whatever the image size. Row-major: y outer, x inner.
    """
    c = (torch.arange(grid, dtype=torch.float32) + 0.5) * (resolution / grid)
    yy, xx = torch.meshgrid(c, c, indexing='ij')
    return torch.stack([xx.flatten(), yy.flatten()], dim=-1)


@MODELS.register_module()
class SAM2Teacher(nn.Module):
    """Frozen SAM 2.1 producing (B, grid^2, H_t, W_t) mask-logit maps for RGB images in [0, 255].

    Args:
        size: 't' | 's' | 'b+' | 'l'.
        checkpoint: official ``sam2.1_hiera_*.pt``; None = random weights (tests only).
        grid: points per side (32 -> 1024 prompts).
        mask_select: 'single' (SAM 2's single-mask output, falling back to the most stable of
            the three when unstable, as ``predict(multimask_output=False)``) or 'best_iou'
            (the multimask output with the highest predicted IoU).
        chunk: prompts per mask-decoder batch; None (default) picks by the device
            (:attr:`CHUNK_BY_DEVICE`): the factorised decoder is fastest with few on a CPU core
            (4: its per-pixel arrays then stay in cache), while a GPU needs large batches to
            amortise its kernel launches; sam2's decoder needs ~12 MB per prompt at 1024 px.
        image_size: SAM input size override (default: the config's 1024).
        decoder: 'factorised' (exact rewrite, default) or 'sam2' (sam2's ``MaskDecoder`` on
            prompt batches, the reference it is tested against).
        compile: ``torch.compile`` the factorised decoder's attention part (same numbers;
            ~1 min of compilation per process, then faster: for dataset cache runs). Falls
            back to eager with a warning when compilation fails.
    """

    def __init__(self, size: str = 'l', checkpoint: Optional[str] = None, grid: int = 32,
                 mask_select: str = 'single', chunk: Optional[int] = None,
                 image_size: Optional[int] = None, decoder: str = 'factorised',
                 compile: bool = False):
        super().__init__()
        from sam2.utils.transforms import SAM2Transforms
        if mask_select not in ('single', 'best_iou'):
            raise ValueError(f"mask_select must be 'single' or 'best_iou', got {mask_select!r}")
        if decoder not in ('factorised', 'sam2'):
            raise ValueError(f"decoder must be 'factorised' or 'sam2', got {decoder!r}")
        if grid < 1 or (chunk is not None and chunk < 1):
            raise ValueError(f'grid ({grid}) and chunk ({chunk}) must be positive')
        self.size, self.grid, self.mask_select, self.chunk = size, grid, mask_select, chunk
        self.sam = build_sam21(size, checkpoint, image_size)
        self.sam.requires_grad_(False)
        self.decoder = decoder
        self._factorised = FactorisedMaskDecoder(self.sam, compile=compile)
        self.resolution = self.sam.image_size
        self.transforms = SAM2Transforms(resolution=self.resolution, mask_threshold=0.0)
        self.register_buffer('points', grid_points(grid, self.resolution), persistent=False)
        self.eval()

    CHUNK_BY_DEVICE = dict(cpu=4, cuda=64)

    def chunk_for(self, device: torch.device) -> int:
        """Prompts per decoder batch on ``device``: ``chunk`` if set, else by device type."""
        if self.chunk is not None:
            return self.chunk
        return self.CHUNK_BY_DEVICE.get(torch.device(device).type, 4)

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: always eval (dynamic multimask needs eval)

    @property
    def num_prompts(self) -> int:
        return self.grid ** 2

    # ------------------------------------------------------------------ image side
    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> Dict[str, object]:
        """Image encoder once per image: RGB (B, 3, H, W) in [0, 255] -> SAM features."""
        x = self.transforms.transforms(images.float() / 255.0)
        sam = self.sam
        backbone_out = sam.forward_image(x)
        _, feats, _, sizes = sam._prepare_backbone_features(backbone_out)
        if sam.directly_add_no_mem_embed:
            feats[-1] = feats[-1] + sam.no_mem_embed
        maps = [f.permute(1, 2, 0).reshape(x.shape[0], -1, *hw) for f, hw in zip(feats, sizes)]
        return dict(image_embed=maps[-1], high_res_feats=maps[:-1])

    # ------------------------------------------------------------------ prompt side
    @torch.no_grad()
    def mask_logits(self, feats: Dict[str, object], index: int,
                    points: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Low-res mask logits (N, 256, 256) of image ``index`` for N single positive points.

        ``points`` are xy in SAM's input frame (default: the grid). One decoder call per
        ``chunk`` prompts; the image embedding is shared, never recomputed. The selection
        ('single': SAM 2's dynamic fallback to the best multimask output when the single mask
        is unstable; 'best_iou') is the one ``SAM2ImagePredictor.predict`` applies.
        """
        sam = self.sam
        dec = sam.sam_mask_decoder
        points = self.points if points is None else points.to(self.points)
        embed = feats['image_embed'][index:index + 1]
        high = [f[index:index + 1] for f in feats['high_res_feats']]
        image_pe = sam.sam_prompt_encoder.get_dense_pe()
        multi = self.mask_select == 'best_iou'
        fast = self.decoder == 'factorised'
        prepared = self._factorised.prepare(embed, high) if fast else None
        out = []
        chunk = self.chunk_for(embed.device)
        for start in range(0, points.shape[0], chunk):
            pts = points[start:start + chunk, None]
            labels = torch.ones(pts.shape[:2], dtype=torch.int, device=pts.device)
            sparse, dense = sam.sam_prompt_encoder(points=(pts, labels), boxes=None, masks=None)
            if fast:  # all four masks + IoU, then the selection of MaskDecoder.forward
                masks, iou = self._factorised(prepared, sparse)
                if multi:
                    masks, iou = masks[:, 1:], iou[:, 1:]
                elif dec.dynamic_multimask_via_stability:
                    masks, iou = dec._dynamic_multimask_via_stability(masks, iou)
                else:
                    masks, iou = masks[:, :1], iou[:, :1]
            else:
                masks, iou, _, _ = dec(
                    image_embeddings=embed, image_pe=image_pe, sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense, multimask_output=multi,
                    repeat_image=True, high_res_features=high)
            if multi:
                masks = masks.gather(1, iou.argmax(1)[:, None, None, None].expand(
                    -1, 1, *masks.shape[-2:]))
            out.append(masks[:, 0].clamp(-LOGIT_CLAMP, LOGIT_CLAMP))
        return torch.cat(out)

    # ------------------------------------------------------------------ targets
    @torch.no_grad()
    def forward(self, images: torch.Tensor, grid_hw: Tuple[int, int]) -> torch.Tensor:
        """RGB (B, 3, H, W) in [0, 255] -> (B, grid^2, gh, gw) mask-logit maps on the token grid."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError('SAM2Teacher expects RGB images (B, 3, H, W), got '
                             f'{tuple(images.shape)}')
        feats = self.embed(images)
        maps = [resample_logits(self.mask_logits(feats, i), grid_hw)
                for i in range(images.shape[0])]
        return torch.stack(maps)


def resample_logits(logits: torch.Tensor, grid_hw: Sequence[int]) -> torch.Tensor:
    """(N, h, w) SAM logits -> (N, gh, gw): area-weighted (antialiased bilinear) resampling."""
    grid_hw = tuple(int(s) for s in grid_hw)
    if tuple(logits.shape[-2:]) == grid_hw:
        return logits
    return F.interpolate(logits[None].float(), size=grid_hw, mode='bilinear',
                         align_corners=False, antialias=True)[0]


def maps_to_tokens(maps: torch.Tensor) -> torch.Tensor:
    """(B, K, gh, gw) -> (B, gh*gw, K) token descriptors."""
    return maps.flatten(2).transpose(1, 2)


__all__: List[str] = ['SAM2Teacher', 'build_sam21', 'grid_points', 'resample_logits',
                      'maps_to_tokens', 'SAM21_CONFIGS']
