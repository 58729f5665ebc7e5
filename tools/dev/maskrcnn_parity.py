#!/usr/bin/env python
"""Parity of pe_dense's Mask R-CNN with Meta's detectron2 code, on a reduced random model.

Needs detectron2 and the official perception_models sources, neither of which pe_dense ships:

    PYTHONPATH=/path/to/detectron2:$PYTHONPATH python tools/dev/maskrcnn_parity.py \
        --official /path/to/perception_models/apps/detection [--name mask_rcnn_PEcore_G_lvis75ep]

The official LazyConfig (``projects/ViTDet/configs/{COCO,LVIS}/NAME.py``) is loaded and shrunk
(width 64, 3 blocks, window 4 with block 2 global, 4 x 4 position grid, 128 px square pad);
its random weights (every parameter drawn at random, LayerNorms included) are converted
with ``pe_dense.models.detectors.maskrcnn_convert`` into the same-size pe_dense model built
from ``configs/maskrcnn/NAME.py``. Both run on one non-square picture; the script prints the
largest differences of pyramid features, RPN proposals, final boxes / scores, and the mask
logits of the official final boxes, and the share of differing mask pixels.
"""
import argparse
import contextlib
import io
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = dict(width=64, depth=3, heads=4, mlp_ratio=2, window=4, global_blocks=(2,), pos_grid=4,
            img=128)


def official_model(root: str, name: str):
    from detectron2.config import LazyConfig, instantiate
    sys.path.insert(0, root)
    folder = 'LVIS' if 'lvis' in name else 'COCO'
    cfg = LazyConfig.load(os.path.join(root, 'projects', 'ViTDet', 'configs', folder, f'{name}.py'))
    net = cfg.model.backbone.net
    net.embed_dim, net.depth, net.num_heads = SIZE['width'], SIZE['depth'], SIZE['heads']
    net.mlp_ratio, net.window_size, net.img_size = SIZE['mlp_ratio'], SIZE['window'], SIZE['img']
    net.window_block_indexes = [i for i in range(SIZE['depth']) if i not in SIZE['global_blocks']]
    net.pretrain_img_size = SIZE['pos_grid'] * net.patch_size
    net.drop_path_rate, net.use_act_checkpoint = 0.0, False
    cfg.model.backbone.square_pad = SIZE['img']
    if 'spatial' in name.lower():
        net.init_values = 0.1  # the training script's model.backbone.net.init_values=0.1
    if cfg.model.roi_heads.box_predictor.get('use_fed_loss'):
        classes = cfg.model.roi_heads.num_classes
        cfg.model.roi_heads.box_predictor.get_fed_loss_cls_weights = lambda: torch.ones(classes)
    with contextlib.redirect_stdout(io.StringIO()):  # pev1_det prints its RoPE shapes
        model = instantiate(cfg.model)
    return model.eval()


def ours_model(name: str):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    import pe_dense.det  # noqa: F401  registers PE, SimpleFPN and the LN2d norm
    init_default_scope('mmdet')
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'maskrcnn', f'{name}.py'))
    w = SIZE['width']
    cfg.model.backbone.arch = dict(patch_size=16, width=w, depth=SIZE['depth'], heads=SIZE['heads'],
                                   mlp_dim=w * SIZE['mlp_ratio'],
                                   layer_scale=cfg.model.backbone.arch.layer_scale,
                                   img_size=SIZE['pos_grid'] * 16)
    cfg.merge_from_dict({'model.backbone.window_size': SIZE['window'],
                         'model.backbone.global_attn_indexes': SIZE['global_blocks'],
                         'model.backbone.init_cfg': None, 'model.backbone.with_cp': False,
                         'model.backbone.drop_path_rate': 0.0,
                         'model.data_preprocessor.pad_size_divisor': SIZE['img'],
                         'model.neck.in_channels': w})
    loss = cfg.model.roi_head.bbox_head.loss_cls
    if loss.type == 'FederatedSigmoidCELoss':
        loss.ann_file, loss.class_weights = None, [1.0] * loss.num_classes
    return MODELS.build(cfg.model).eval(), cfg


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--official', required=True,
                        help='perception_models/apps/detection (holds detectron2_pe, projects)')
    parser.add_argument('--name', default='mask_rcnn_PEspatial_G_coco36ep')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    from detectron2.structures import Boxes

    from pe_dense.models.detectors.maskrcnn_convert import convert_official_maskrcnn

    torch.manual_seed(args.seed)
    off = official_model(args.official, args.name)
    with torch.no_grad():
        for key, p in off.named_parameters():  # the official Attention leaves in_proj empty
            if p.ndim > 1:
                p.copy_(torch.randn_like(p) * 0.02)
            elif key.endswith('.weight'):  # norms
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:  # biases, LayerScale
                p.copy_(0.1 * torch.randn_like(p))
    ours, cfg = ours_model(args.name)
    ours.load_state_dict(convert_official_maskrcnn(off.state_dict()), strict=True)

    rng = np.random.default_rng(args.seed)
    h, w = 96, 128  # non-square; padded to the 128 square by both
    rgb = torch.from_numpy(rng.integers(0, 256, (3, h, w), dtype=np.uint8))
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.)))
    with torch.no_grad():
        # official: RGB float CHW; ours: BGR uint8 as mmcv loads it (bgr_to_rgb in the preprocessor)
        images = off.preprocess_image([{'image': rgb.float()}])
        f_off = off.backbone(images.tensor)
        data = ours.data_preprocessor(dict(inputs=[rgb.flip(0)], data_samples=[sample]))
        f_ours = ours.extract_feat(data['inputs'])
        feat = max((f_off[k] - f).abs().max().item() for k, f in zip(sorted(f_off), f_ours))

        prop_off, _ = off.proposal_generator(images, f_off)
        prop_ours = ours.rpn_head.predict(f_ours, data['data_samples'], rescale=False)[0]
        n = min(len(prop_off[0]), len(prop_ours))
        prop_box = (prop_off[0].proposal_boxes.tensor[:n] - prop_ours.bboxes[:n]).abs().max().item()
        prop_score = (prop_off[0].objectness_logits[:n].sigmoid() - prop_ours.scores[:n]).abs().max().item()

        det_off = off.inference([{'image': rgb.float(), 'height': h, 'width': w}])[0]['instances']
        det_ours = ours.predict(data['inputs'], data['data_samples'])[0].pred_instances
        # pair detections by label and box (random heads give tied scores, listed in any order)
        from scipy.optimize import linear_sum_assignment
        b_off, b_ours = det_off.pred_boxes.tensor, det_ours.bboxes
        cost = torch.cdist(b_off, b_ours, p=float('inf'))
        cost = cost + 1e6 * (det_off.pred_classes[:, None] != det_ours.labels[None, :])
        i, j = linear_sum_assignment(cost.numpy())
        paired = cost[i, j] < 1e-2
        i, j = i[paired.numpy()], j[paired.numpy()]
        box = (b_off[i] - b_ours[j]).abs().max().item()
        score = (det_off.scores[i] - det_ours.scores[j]).abs().max().item()
        mask_px = (det_off.pred_masks[i] != det_ours.masks[j]).float().mean().item()
        m = len(i)

        boxes = det_off.pred_boxes.tensor
        x = off.roi_heads.mask_pooler([f_off[k] for k in off.roi_heads.mask_in_features], [Boxes(boxes)])
        logit_off = off.roi_heads.mask_head.layers(x)
        from mmdet.structures.bbox import bbox2roi
        logit_ours = ours.roi_head._mask_forward(f_ours, bbox2roi([boxes]))['mask_preds']
        logit = (logit_off - logit_ours).abs().max().item()
        scale = logit_off.abs().max().item()

    print(f'{args.name} (reduced, random weights, {h}x{w} input padded to {SIZE["img"]}):')
    print(f'  pyramid features      max |diff| {feat:.2e}')
    print(f'  RPN proposals ({n})   boxes {prop_box:.2e} px, objectness {prop_score:.2e}')
    print(f'  detections {len(det_off)} official / {len(det_ours)} ours, {m} paired (same label, '
          f'box within 0.01 px): boxes {box:.2e} px, scores {score:.2e}, '
          f'differing mask pixels {mask_px:.2%}')
    print(f'  mask logits ({tuple(logit_off.shape)}) max |diff| {logit:.2e} (max |logit| {scale:.2f})')


if __name__ == '__main__':
    main()
