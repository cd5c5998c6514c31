"""What the optimised core is measured against. Written from the method description
(doc/architecture.md, "The methods"), deliberately plain; none of it is used by the product.

- `BareEncoder`: open_clip's own `visual(x)` forward, the floor for one CLIP pass.
- `PlainPipeline`: CLIP-DINOiser the straightforward way: fp32, every block run in full (the
  last block's attention is computed and thrown away), positional table resized every frame,
  per-class classification loop, per-class statistics loop.
- `plain_text_embeddings`: full 77-token context, fp32, one class at a time.
- `per_crop_diy`: CLIP-DIY with one `encode_image` per crop and a PIL round trip per crop.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from PIL import Image
from torch import nn

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def resized_table(table: torch.Tensor, grid: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    """A ViT positional table (1 + gh*gw, W) for another grid: patch rows bicubic-resized
    (align_corners False, computed in fp32), class row unchanged."""
    gh, gw = grid
    patches = table[1:].float().T.reshape(1, -1, gh, gw)
    patches = F.interpolate(patches, size=tuple(size), mode="bicubic", align_corners=False)
    return torch.cat([table[:1], patches.reshape(table.shape[1], -1).T.to(table.dtype)])


class BareEncoder:
    """open_clip's `visual(pixels)` at any multiple-of-patch size.

    A shallow copy of the module gets its own parameter dict holding the resized positional
    table, so the shared model is never mutated (other threads may be using it).
    """

    def __init__(self, visual: nn.Module, size: tuple[int, int]):
        patch = visual.conv1.kernel_size[0]
        grid = (size[0] // patch, size[1] // patch)
        self.visual = copy.copy(visual)
        self.visual._parameters = dict(visual._parameters)
        table = resized_table(visual.positional_embedding.detach(), visual.grid_size, grid)
        self.visual._parameters["positional_embedding"] = nn.Parameter(table, requires_grad=False)

    @torch.inference_mode()
    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.visual(pixels)


def vit_gflops(visual: nn.Module, size: tuple[int, int], value_path_last: bool = False) -> float:
    """Multiply-adds x 2 of a ViT forward at `size` (linear layers and attention matmuls).

    value_path_last: the last block runs MaskCLIP's value path (no q, k, no attention)."""
    patch = visual.conv1.kernel_size[0]
    n = (size[0] // patch) * (size[1] // patch) + 1
    width = visual.conv1.out_channels
    blocks = visual.transformer.resblocks
    mlp = blocks[0].mlp.c_fc.out_features
    full = 2 * n * (4 * width**2 + 2 * width * mlp) + 4 * n * n * width
    last = 2 * n * (2 * width**2 + 2 * width * mlp) if value_path_last else full
    embed = 2 * n * width * 3 * patch * patch
    return (embed + full * (len(blocks) - 1) + last) / 1e9


def plain_text_embeddings(clip: nn.Module, tokenizer, names: Sequence[str]) -> torch.Tensor:
    """(C, D) fp32: per class, 80 templates through `encode_text` at full context."""
    rows = []
    with torch.inference_mode():
        for name in names:
            tokens = tokenizer([t(name) for t in OPENAI_IMAGENET_TEMPLATES])
            feats = F.normalize(clip.encode_text(tokens).float(), dim=-1)
            rows.append(F.normalize(feats.mean(dim=0), dim=-1))
    return torch.stack(rows)


class PlainPipeline:
    """CLIP-DINOiser per frame, fp32, batch 1, no caching or fusion (see module docstring)."""

    def __init__(self, clip: nn.Module, heads: nn.Module, text: torch.Tensor,
                 ids: Sequence[int], background: bool, input_size: int = 448,
                 gamma: float = 0.2, delta: float = 0.99, feature_block: int = -3):
        self.clip = copy.deepcopy(clip).float().eval()
        self.heads = copy.deepcopy(heads).float().eval()
        self.text = text.float()
        self.ids = list(ids)
        self.background = background
        self.input_size = input_size
        self.gamma, self.delta = gamma, delta
        self.feature_index = feature_block % len(self.clip.visual.transformer.resblocks)

    def _input(self, rgb: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
        h, w = x.shape[-2:]
        if self.input_size > 0 and min(h, w) != self.input_size:
            s = self.input_size / min(h, w)
            size = (max(1, round(h * s)), max(1, round(w * s)))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                              antialias=size[0] < h)
        ph, pw = (-x.shape[-2]) % 16, (-x.shape[-1]) % 16
        return F.pad(x, (0, pw, 0, ph)), x.shape[-2:]

    def _forward(self, x: torch.Tensor):
        v = self.clip.visual
        t = v.conv1((x - MEAN) / STD)
        h, w = t.shape[-2:]
        t = t.flatten(2).transpose(1, 2)
        t = torch.cat([v.class_embedding.view(1, 1, -1), t], dim=1)
        t = t + resized_table(v.positional_embedding, v.grid_size, (h, w))
        t = v.ln_pre(t)
        blocks = v.transformer.resblocks
        g = None
        for i, blk in enumerate(blocks):
            y = blk.ln_1(t)
            attn_out = blk.attn(y, y, y, need_weights=False)[0]
            if i == len(blocks) - 1:  # MaskCLIP: the value path replaces the attention output
                width = t.shape[-1]
                value = F.linear(y, blk.attn.in_proj_weight, blk.attn.in_proj_bias)[..., 2 * width:]
                attn_out = blk.attn.out_proj(value)
            t = t + attn_out
            z = blk.ln_2(t)
            if i == self.feature_index:
                g = z
            t = t + blk.mlp(z)
        t = v.ln_post(t)[:, 1:] @ v.proj
        dense = t[0].T.reshape(-1, h, w)
        return dense, g[0, 1:].T.reshape(-1, h, w)

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        x, size = self._input(rgb)
        dense, g = self._forward(x)
        h, w = dense.shape[-2:]
        proj = F.normalize(self.heads.obj_proj(g[None])[0], dim=0).reshape(-1, h * w)
        objectness = torch.sigmoid(self.heads.bkg_decoder(F.normalize(g, dim=0)[None]))[0, 0]
        corr = proj.T @ proj
        corr = torch.where(corr < self.gamma, torch.zeros_like(corr), corr)
        feats = dense.reshape(-1, h * w)
        pooled = (feats @ corr.T) / (corr.sum(dim=1) + 1e-6)
        pooled = F.normalize(pooled, dim=0)
        logits = torch.stack([(pooled * t[:, None]).sum(dim=0) for t in self.text])
        probs = torch.softmax(100.0 * logits, dim=0).reshape(-1, h, w)
        if self.background:
            fill = (probs.max(dim=0).values < self.delta) & (objectness <= 0.5)
            probs[0][fill] = 1.0
        up = F.interpolate(probs[None], size=(h * 16, w * 16), mode="bilinear",
                           align_corners=False)[..., :size[0], :size[1]]
        if tuple(size) != tuple(rgb.shape[:2]):
            up = F.interpolate(up, size=rgb.shape[:2], mode="bilinear", align_corners=False,
                               antialias=size[0] > rgb.shape[0])
        top2 = up[0].topk(2, dim=0).values if up.shape[1] > 1 else up[0].expand(2, -1, -1)
        conf, index = up[0].max(dim=0)
        labels = torch.tensor(self.ids)[index].numpy().astype(np.uint16)
        conf = conf.numpy()
        stats = {cid: (float((labels == cid).mean()), float(conf[labels == cid].mean())
                       if (labels == cid).any() else 0.0) for cid in self.ids if cid}
        return {"labels": labels, "confidence": conf, "patch_probs": probs.numpy(), "stats": stats,
                "margin": (top2[0] - top2[1]).numpy()}


@torch.inference_mode()
def per_crop_diy(clip: nn.Module, rgb: np.ndarray, text: torch.Tensor,
                 image_size: tuple[int, int] = (256, 256), crops: Sequence[int] = (256, 128, 64),
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """CLIP-DIY raw score maps (C, H, W) with one forward per crop, as the seed code does it."""
    img = Image.fromarray(rgb).resize(image_size[::-1], Image.BICUBIC)
    side = clip.visual.image_size
    side = side if isinstance(side, int) else side[0]
    text = text.float()
    total = torch.zeros(text.shape[0], *image_size)
    for crop in crops:
        stride = crop // 2
        ys = range(0, image_size[0] - crop + 1, stride)
        xs = range(0, image_size[1] - crop + 1, stride)
        grid = torch.zeros(text.shape[0], len(ys), len(xs))
        for i, y in enumerate(ys):
            for j, x in enumerate(xs):
                piece = img.crop((x, y, x + crop, y + crop)).resize((side, side), Image.BICUBIC)
                t = torch.from_numpy(np.array(piece)).permute(2, 0, 1)[None].float() / 255.0
                emb = clip.encode_image(((t - MEAN) / STD).to(dtype)).float()
                grid[:, i, j] = F.normalize(emb, dim=-1)[0] @ text.T
        total += F.interpolate(grid[None], size=image_size, mode="bilinear",
                               align_corners=False)[0]
    return total / len(crops)


def sdpa_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """An open_clip residual block with its attention through F.scaled_dot_product_attention.

    x: (B, N, W) -> (B, N, W). For the `attention` benchmark only."""
    attn = block.attn
    b, n, w = x.shape
    heads = attn.num_heads
    qkv = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = qkv.view(b, n, 3, heads, w // heads).permute(2, 0, 3, 1, 4).unbind(0)
    out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, w)
    x = x + block.ls_1(attn.out_proj(out))
    return x + block.ls_2(block.mlp(block.ln_2(x)))
