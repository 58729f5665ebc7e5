"""Exact, factorised SAM 2 mask decoder for many single-point prompts on one image.

SAM 2's ``MaskDecoder`` copies the 4096 image tokens once per prompt and runs every projection
of the two-way transformer on all of them. For a batch of prompts on one image almost all of
that is shared or low rank, and this module computes the same numbers (float32 rounding aside)
from per-image precomputations plus per-prompt work on few columns:

* layer 1 sees the same image tokens ``X`` (embedding + 'no mask' dense embedding) for every
  prompt, so its image-side key/value/query projections are computed once per image;
* the image-to-token attention of a layer adds ``sum_h A_h V_h W_o,h^T``: per pixel a mixture
  of ``H x T`` (8 heads x 8 tokens) prompt-dependent rows. Hence, per prompt,
  ``Y1 = X + A1 B1`` and after ``norm4``: ``keys_1 = rs1 * (g1 * C X) + (rs1 * A1) (g1 * C B1)
  + b1`` (``C`` = centring, ``rs1`` = per-pixel 1/std). Layer 2 adds ``A2 B2``, and its norm
  gives ``keys_2 = rs2 * (rs1 * G + a E) * g2 + b2`` with ``G = C(g1 * C X)`` fixed,
  ``a = [rs1 A1, A2, 1]`` (129 coefficients per pixel) and ``E`` a 129 x 256 per-prompt basis;
* every linear map of those image tokens therefore splits into the map of the fixed part
  (once per image) plus ``a @ (E W)`` (129 columns per pixel, not 256 inputs); LayerNorm's
  variance is expanded as ``|rs1 G + a E|^2`` whose cross terms ``G . E_r`` reduce, through
  ``E_r = V_{h,t} W_o,h^T``, to per-image ``G W_o`` products dotted with 16-dim head values;
* attention of tokens to image tokens only needs scores and weighted sums, which are formed
  from those factors without materialising per-prompt keys or values;
* the upscaling (two transposed convolutions with LayerNorm/GELU) is non-linear, so it runs on
  every low-res pixel; its first convolution still uses the factored form. All 256x256 pixels
  are needed anyway: the stability test of the single-mask output counts over all of them and
  the antialiased resampling to the token grid reads every pixel.

Only the outputs the predictor uses are produced: the four mask logits maps and the IoU
prediction (the object-score token's output is unused by ``SAM2ImagePredictor``).
"""
import math
import warnings
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers import fp32_no_autocast


def _lin(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, layer.weight, layer.bias)


class FactorisedMaskDecoder:
    """Exact rewrite of ``sam.sam_mask_decoder`` for B single-point prompts sharing one image.

    ``prepare`` does the prompt-independent work for one image; ``__call__`` returns the
    decoder's full outputs ``(masks (B, 4, 4h, 4w), iou (B, 4))`` before mask selection, i.e.
    what ``MaskDecoder.predict_masks`` gives as ``masks, iou_pred``.

    ``compile=True`` runs the token/attention part (many small element-wise passes over
    (heads x tokens, pixels) arrays: softmaxes, rescalings, concatenations) through
    ``torch.compile`` (inductor, fixed shapes), which fuses those passes; compilation costs tens
    of seconds once per process and chunk size, which a dataset cache amortises. The upscaling
    stays eager (its time is two GEMMs and the erf-GELUs; inductor did not speed it up). If
    compilation fails (no C++ compiler, unsupported platform) it warns and runs eager.
    """

    def __init__(self, sam: nn.Module, compile: bool = False):
        dec = sam.sam_mask_decoder
        tr = dec.transformer
        if tr.depth != 2 or not dec.use_high_res_features:
            raise NotImplementedError('FactorisedMaskDecoder covers SAM 2 decoders (depth 2, '
                                      'high-res features)')
        self.sam, self.dec, self.tr = sam, dec, tr
        self.heads = tr.num_heads
        self.s = 1 if dec.pred_obj_scores else 0
        self.num_masks = dec.num_mask_tokens
        self.tile = 1024  # low-res cells per upscaling step (whole rows of the grid)
        self.compile = bool(compile)
        self._compiled = None

    # ---------------------------------------------------------------- per image
    @torch.no_grad()
    @fp32_no_autocast  # the expanded LayerNorm variances cancel large terms: no bf16 GEMMs
    def prepare(self, image_embed: torch.Tensor, high_res_feats: List[torch.Tensor]
                ) -> Dict[str, torch.Tensor]:
        """Prompt-independent tensors of one image (``image_embed`` (1, D, h, w))."""
        sam, dec, tr = self.sam, self.dec, self.tr
        l1, l2, fin = tr.layers[0], tr.layers[1], tr.final_attn_token_to_image
        _, d, h, w = image_embed.shape
        H = self.heads
        pe = sam.sam_prompt_encoder.get_dense_pe().flatten(2)[0].t()  # (N, D)
        dense = sam.sam_prompt_encoder.no_mask_embed.weight.reshape(1, d)
        x = image_embed.flatten(2)[0].t() + dense  # (N, D): image tokens of every prompt

        def heads(t):  # (N, Ci) -> (H, dh, N): right operand of per-head products
            return t.reshape(t.shape[0], H, -1).permute(1, 2, 0).contiguous()

        def vheads(t):  # (N, Ci) -> (H, N, dh): values gathered by attention weights
            return t.reshape(t.shape[0], H, -1).transpose(0, 1).contiguous()

        p = dict(hw=(h, w))
        # layer 1: image-side projections are shared by all prompts
        p['k1'] = heads(_lin(l1.cross_attn_token_to_image.k_proj, x + pe))
        p['v1'] = vheads(_lin(l1.cross_attn_token_to_image.v_proj, x))
        p['qi1'] = heads(_lin(l1.cross_attn_image_to_token.q_proj, x + pe))
        wo1 = l1.cross_attn_image_to_token.out_proj.weight  # (D, Ci)
        cx1 = x + l1.cross_attn_image_to_token.out_proj.bias
        cx1 = cx1 - cx1.mean(-1, keepdim=True)
        p['sq1'] = (cx1 * cx1).sum(-1)
        p['h1'] = heads(cx1 @ wo1)  # G.B1_(h,t) = V_(h,t) . (cx1 W_o,h)
        g1, b1 = l1.norm4.weight, l1.norm4.bias
        f1 = g1 * cx1  # keys_1 = rs1 * f1 + c1 R1 + b1
        # layer 2: projections of the fixed part of keys_1
        t2i, i2t = l2.cross_attn_token_to_image, l2.cross_attn_image_to_token
        p['f1k2'] = heads(f1 @ t2i.k_proj.weight.t())
        p['pek2'] = heads(_lin(t2i.k_proj, b1 + pe))
        p['f1v2'] = vheads(f1 @ t2i.v_proj.weight.t())
        p['cv2'] = _lin(t2i.v_proj, b1).reshape(H, 1, -1)
        p['f1q2'] = heads(f1 @ i2t.q_proj.weight.t())
        p['peq2'] = heads(_lin(i2t.q_proj, b1 + pe))
        # layer-2 norm: C Z = rs1 * G + a E
        g = f1 - f1.mean(-1, keepdim=True)
        e = b1 + i2t.out_proj.bias
        e = e - e.mean()
        p['e'] = e
        p['sqg'] = (g * g).sum(-1)
        gc = g1 * g
        p['j1'] = heads((gc - gc.mean(-1, keepdim=True)) @ wo1)  # G . C(g1 * C B1_row)
        p['j2'] = heads(g @ i2t.out_proj.weight)  # G . B2_row
        p['j3'] = g @ e
        g2, b2 = l2.norm4.weight, l2.norm4.bias
        gg = g * g2  # keys_2 = rs2 * (rs1 * gg + a (E * g2)) + b2
        p['gk3'] = heads(gg @ fin.k_proj.weight.t())
        p['pek3'] = heads(_lin(fin.k_proj, b2 + pe))
        p['gv3'] = vheads(gg @ fin.v_proj.weight.t())
        p['cv3'] = _lin(fin.v_proj, b2).reshape(H, 1, -1)
        # upscaling: first transposed conv as a (D, 4 * D/4) matrix, outputs ordered (a, b, c)
        dc1, ln1, _, dc2, _ = dec.output_upscaling
        wdc = dc1.weight.permute(0, 2, 3, 1).reshape(d, -1)
        p['wdc'] = wdc
        p['gdc'] = gg @ wdc
        c1 = dc1.weight.shape[1]
        s0, s1 = high_res_feats
        s1 = s1[0].reshape(c1, h, 2, w, 2).permute(1, 3, 2, 4, 0).reshape(h * w, 4, c1)
        p['dc_const'] = (((b2 @ wdc).reshape(4, c1) + dc1.bias) + s1).reshape(h * w, 4 * c1)
        c2 = dc2.weight.shape[1]
        p['w2'] = dc2.weight.permute(0, 2, 3, 1).reshape(c1, 4 * c2)  # (C1, (c, d, C2))
        # rows (y, x, a, b) as the first conv's output rows, columns (c, d, C2)
        s0 = s0[0].reshape(c2, h, 2, 2, w, 2, 2).permute(1, 4, 2, 5, 3, 6, 0)
        p['dc2_const'] = (s0.reshape(h * w * 4, 4, c2) + dc2.bias).reshape(h * w * 4, 4 * c2)
        return p

    # ---------------------------------------------------------------- per prompt batch
    @torch.no_grad()
    @fp32_no_autocast
    def __call__(self, p: Dict[str, torch.Tensor], sparse: torch.Tensor
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``sparse`` (B, P, D) prompt embeddings -> masks (B, 4, 4h, 4w), iou (B, 4)."""
        ar, rr, ew, hyper, iou = self._run_tokens(p, sparse)
        return self.upscale(p, ar, rr, ew, hyper), iou

    def _run_tokens(self, p: Dict[str, torch.Tensor], sparse: torch.Tensor):
        if self.compile:
            if self._compiled is None:
                self._compiled = torch.compile(self.tokens, dynamic=False)
            try:
                return self._compiled(p, sparse)
            except Exception as err:  # compiler missing/broken: same numbers, eager
                warnings.warn(f'torch.compile of FactorisedMaskDecoder failed ({err!r}); '
                              'running eager')
                self.compile, self._compiled = False, None
        return self.tokens(p, sparse)

    @torch.no_grad()
    def tokens(self, p: Dict[str, torch.Tensor], sparse: torch.Tensor):
        """Two-way transformer + heads: upscaling inputs ``(ar, rr, ew, hyper)`` and the IoU.

        Per-pixel arrays keep the pixel axis innermost ((B, rows, N)) so that every product
        with the N image tokens is one (batched) GEMM and no small-stride copies are needed.
        """
        dec, tr = self.dec, self.tr
        l1, l2, fin = tr.layers[0], tr.layers[1], tr.final_attn_token_to_image
        B, _, d = sparse.shape
        H = self.heads
        h, w = p['hw']
        n = h * w
        if self.s:
            out_tok = torch.cat([dec.obj_score_token.weight, dec.iou_token.weight,
                                 dec.mask_tokens.weight])
        else:
            out_tok = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight])
        tokens = torch.cat([out_tok.unsqueeze(0).expand(B, -1, -1), sparse], 1)  # (B, T, D)
        T = tokens.shape[1]
        dh = p['k1'].shape[1]
        scale = 1.0 / math.sqrt(dh)

        def heads(t):  # (B, T, Ci) -> (B, H, T, dh)
            return t.reshape(t.shape[0], t.shape[1], H, -1).transpose(1, 2)

        def merge(t):  # (B, H, T, dh) -> (B, T, Ci)
            return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], -1)

        def pix(pt, x):  # (H, dh, N) fixed, (B, H, T, dh) -> (B, H, T, N) = x . pt per head
            t = x.shape[2]
            out = torch.matmul(x.transpose(0, 1).reshape(H, B * t, dh), pt)
            return out.view(H, B, t, n).transpose(0, 1)

        def gather(att, pv):  # (B, H, T, N) weights, (H, N, dh) fixed -> (B, H, T, dh)
            t = att.shape[2]
            out = torch.matmul(att.transpose(0, 1).reshape(H, B * t, n), pv)
            return out.view(H, B, t, dh).transpose(0, 1)

        def basis(r, x):  # (B, R, H, dh), (B, H, T, dh) -> (B, H*T, R) coefficients
            return torch.einsum('brhd,bhtd->bhtr', r, x).reshape(B, -1, r.shape[1])

        # ---- layer 1 (image tokens identical for all prompts)
        q = l1.norm1(l1.self_attn(q=tokens, k=tokens, v=tokens))
        a_ = l1.cross_attn_token_to_image
        qq = heads(_lin(a_.q_proj, q + tokens))  # (B, H, T, dh)
        att = torch.softmax(pix(p['k1'], qq) * scale, -1)
        q = l1.norm2(q + _lin(a_.out_proj, merge(gather(att, p['v1']))))
        q = l1.norm3(q + l1.mlp(q))
        a_ = l1.cross_attn_image_to_token
        kt = heads(_lin(a_.k_proj, q + tokens))
        vt = heads(_lin(a_.v_proj, q))  # (B, H, T, dh)
        A1 = torch.softmax(pix(p['qi1'], kt) * scale, 2).reshape(B, H * T, n)
        wo1 = a_.out_proj.weight.reshape(d, H, dh)
        B1 = torch.einsum('bhtk,dhk->bhtd', vt, wo1).reshape(B, H * T, d)
        CB1 = B1 - B1.mean(-1, keepdim=True)
        # |C Y1|^2 = |C X1|^2 + A1 . (2 (B1 . C X1) + (CB1 CB1^T) A1)
        lin = torch.baddbmm(pix(p['h1'], vt).reshape(B, H * T, n), CB1 @ CB1.transpose(1, 2),
                            A1, beta=2.0)
        var1 = (p['sq1'] + (A1 * lin).sum(1)) / d
        rs1 = torch.rsqrt(var1 + l1.norm4.eps)  # (B, N)
        R1 = CB1 * l1.norm4.weight  # keys_1 = rs1 * f1 + c1^T R1 + b1
        c1 = A1 * rs1[:, None]  # (B, HT, N)
        rs1_ = rs1[:, None, None]

        # ---- layer 2
        qp = q + tokens
        q = l2.norm1(q + l2.self_attn(q=qp, k=qp, v=q))
        a_ = l2.cross_attn_token_to_image
        qq = heads(_lin(a_.q_proj, q + tokens))
        r1k = (R1 @ a_.k_proj.weight.t()).reshape(B, H * T, H, dh)
        lg = (pix(p['f1k2'], qq) * rs1_ + pix(p['pek2'], qq)
              + torch.bmm(basis(r1k, qq), c1).view(B, H, T, n))
        att = torch.softmax(lg * scale, -1)
        r1v = (R1 @ a_.v_proj.weight.t()).reshape(B, H * T, H, dh)
        wc = torch.bmm(att.reshape(B, H * T, n), c1.transpose(1, 2)).reshape(B, H, T, -1)
        o = (gather(att * rs1_, p['f1v2']) + torch.einsum('bhtr,brhd->bhtd', wc, r1v)
             + p['cv2'])
        q = l2.norm2(q + _lin(a_.out_proj, merge(o)))
        q = l2.norm3(q + l2.mlp(q))
        a_ = l2.cross_attn_image_to_token
        kt2 = heads(_lin(a_.k_proj, q + tokens))
        vt2 = heads(_lin(a_.v_proj, q))
        r1q = (R1 @ a_.q_proj.weight.t()).reshape(B, H * T, H, dh)
        lg = (pix(p['f1q2'], kt2) * rs1_ + pix(p['peq2'], kt2)
              + torch.bmm(basis(r1q, kt2), c1).view(B, H, T, n))
        A2 = torch.softmax(lg * scale, 2).reshape(B, H * T, n)
        wo2 = a_.out_proj.weight.reshape(d, H, dh)
        B2 = torch.einsum('bhtk,dhk->bhtd', vt2, wo2).reshape(B, H * T, d)
        # C Z = rs1 * G + a^T E, a = [c1, A2, 1], E = [C R1, C B2, e]
        E = torch.cat([R1 - R1.mean(-1, keepdim=True), B2 - B2.mean(-1, keepdim=True),
                       p['e'].expand(B, 1, d)], 1)
        a = torch.cat([c1, A2, c1.new_ones(B, 1, n)], 1)  # (B, 2HT + 1, N)
        cross = torch.cat([pix(p['j1'], vt).reshape(B, H * T, n),
                           pix(p['j2'], vt2).reshape(B, H * T, n),
                           p['j3'].expand(B, 1, n)], 1)
        lin = torch.baddbmm(cross * (2 * rs1[:, None]), E @ E.transpose(1, 2), a)
        sq = rs1 * rs1 * p['sqg'] + (a * lin).sum(1)
        rs2 = torch.rsqrt(sq / d + l2.norm4.eps)  # keys_2 = rs2 * (rs1 G + a^T E) * g2 + b2
        Eg = E * l2.norm4.weight
        ar = a * rs2[:, None]
        rr = rs2 * rs1

        # ---- final token-to-image attention, only for the IoU and mask tokens
        sel = slice(self.s, self.s + 1 + self.num_masks)
        qs, ts = q[:, sel], tokens[:, sel]
        S = qs.shape[1]
        qq = heads(_lin(fin.q_proj, qs + ts))
        ek = (Eg @ fin.k_proj.weight.t()).reshape(B, -1, H, dh)
        lg = (pix(p['gk3'], qq) * rr[:, None, None] + pix(p['pek3'], qq)
              + torch.bmm(basis(ek, qq), ar).view(B, H, S, n))
        att = torch.softmax(lg * scale, -1)
        ev = (Eg @ fin.v_proj.weight.t()).reshape(B, -1, H, dh)
        wc = torch.bmm(att.reshape(B, H * S, n), ar.transpose(1, 2)).reshape(B, H, S, -1)
        o = (gather(att * rr[:, None, None], p['gv3'])
             + torch.einsum('bhtr,brhd->bhtd', wc, ev) + p['cv3'])
        qs = tr.norm_final_attn(qs + _lin(fin.out_proj, merge(o)))
        iou = dec.iou_prediction_head(qs[:, 0])
        hyper = torch.stack([mlp(qs[:, 1 + i]) for i, mlp in
                             enumerate(dec.output_hypernetworks_mlps)], 1)  # (B, M, C2)
        return ar, rr, Eg @ p['wdc'], hyper, iou

    def upscale(self, p: Dict[str, torch.Tensor], ar: torch.Tensor, rr: torch.Tensor,
                ew: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        """Mask logits (B, M, 4h, 4w) on every low-res pixel.

        One prompt and about ``self.tile`` cells (whole rows of the h x w grid) at a time, so that
        the conv-transpose / LayerNorm / GELU chain stays in cache. Every element-wise pass runs
        in place on contiguous data (a GELU reading a permuted view is several times slower: it
        loses vectorisation); the rows stay in the order the first conv gives, (y, x, a, b, c, d),
        and only the M logits per pixel are permuted to raster order at the end.
        """
        _, ln1, _, _, _ = self.dec.output_upscaling
        h, w = p['hw']
        c1n = ln1.weight.shape[0]
        B, M, c2n = hyper.shape
        gdc, dcc, w2, c2 = p['gdc'], p['dc_const'], p['w2'], p['dc2_const']
        k = max(1, self.tile // w)  # cell rows per tile
        out = hyper.new_empty(B, M, 16 * h * w)
        ubuf = hyper.new_empty(k * w, 4 * c1n)
        vbuf = hyper.new_empty(k * w * 4, 4 * c2n)
        mbuf = hyper.new_empty(M, k * w * 16)
        for b in range(B):
            for y0 in range(0, h, k):
                y1 = min(y0 + k, h)
                r, s, e = y1 - y0, y0 * w, y1 * w
                u = torch.addcmul(dcc[s:e], gdc[s:e], rr[b, s:e, None], out=ubuf[:r * w])
                u.addmm_(ar[b, :, s:e].t(), ew[b])  # first conv-transpose: rows (y, x, a, b)
                u = F.layer_norm(u.view(-1, c1n), (c1n,), ln1.weight, ln1.bias, ln1.eps)
                torch.ops.aten.gelu_(u)  # exact (erf) GELU, in place
                v = torch.addmm(c2[4 * s:4 * e], u, w2, out=vbuf[:r * w * 4])
                torch.ops.aten.gelu_(v)  # rows (y, x, a, b), columns (c, d, C2)
                m = torch.mm(hyper[b], v.view(-1, c2n).t(), out=mbuf[:, :r * w * 16])
                out[b, :, 16 * s:16 * e].view(M, r, 2, 2, w, 2, 2).copy_(
                    m.view(M, r, w, 2, 2, 2, 2).permute(0, 1, 3, 5, 2, 4, 6))
        return out.view(B, M, 4 * h, 4 * w)
