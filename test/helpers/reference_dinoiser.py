"""A deliberately plain implementation of MaskCLIP + CLIP-DINOiser as doc/architecture.md
("The methods") states them.

Loops over patches, explicit per-head attention, the 77-token text path of open_clip: slow and
obvious, so the fast implementation can be checked against it on seeded random weights.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def text_embeddings(clip, tokenizer, names: list[str]) -> torch.Tensor:
    """open_clip's own full 77-token text path, one batch of 80 templates per name."""
    rows = []
    for name in names:
        emb = clip.encode_text(tokenizer([t(name) for t in OPENAI_IMAGENET_TEMPLATES]))
        mean = (emb / emb.norm(dim=-1, keepdim=True)).mean(0)
        rows.append(mean / mean.norm())
    return torch.stack(rows)


def layer_norm(x, ln):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def attention(block, x):
    """Multi-head self-attention written out: x (N, W) one image."""
    attn = block.attn
    n, width = x.shape
    heads = attn.num_heads
    qkv = x @ attn.in_proj_weight.t() + attn.in_proj_bias
    q, k, v = qkv[:, :width], qkv[:, width:2 * width], qkv[:, 2 * width:]
    hd = width // heads
    out = torch.zeros(n, width)
    for h in range(heads):
        sl = slice(h * hd, (h + 1) * hd)
        weights = torch.softmax(q[:, sl] @ k[:, sl].t() / math.sqrt(hd), dim=-1)
        out[:, sl] = weights @ v[:, sl]
    return out @ attn.out_proj.weight.t() + attn.out_proj.bias


def mlp(block, x):
    return block.mlp(x)


def reference_patch_probs(clip, heads_state, text, rgb: np.ndarray, background: bool,
                          gamma=0.2, delta=0.99, feature_block=-3) -> torch.Tensor:
    """(C, h, w) patch probabilities for one (H, W, 3) uint8 image, fp32, no resizing."""
    visual = clip.visual
    p = visual.conv1.kernel_size[0]
    img = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
    H, W = img.shape[1:]
    Hp, Wp = math.ceil(H / p) * p, math.ceil(W / p) * p
    padded = torch.zeros(3, Hp, Wp)
    padded[:, :H, :W] = img
    for c in range(3):
        padded[c] = (padded[c] - MEAN[c]) / STD[c]
    h, w = Hp // p, Wp // p
    # Patch embedding, one patch at a time.
    kernel = visual.conv1.weight.reshape(visual.conv1.out_channels, -1)
    tokens = [visual.class_embedding]
    for i in range(h):
        for j in range(w):
            tokens.append(kernel @ padded[:, i * p:(i + 1) * p, j * p:(j + 1) * p].reshape(-1))
    x = torch.stack(tokens)
    gh, gw = visual.grid_size
    table = visual.positional_embedding
    grid = table[1:].reshape(1, gh, gw, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
    x = x + torch.cat([table[:1], grid[0].reshape(grid.shape[1], -1).t()])
    x = layer_norm(x, visual.ln_pre)
    blocks = list(visual.transformer.resblocks)
    g = None
    for idx, block in enumerate(blocks[:-1]):
        x = x + attention(block, layer_norm(x, block.ln_1))
        y = layer_norm(x, block.ln_2)
        if idx == feature_block % len(blocks):
            g = y.clone()
        x = x + mlp(block, y)
    last = blocks[-1]
    width = x.shape[1]
    y = layer_norm(x, last.ln_1)
    v = y @ last.attn.in_proj_weight[2 * width:].t() + last.attn.in_proj_bias[2 * width:]
    v = v @ last.attn.out_proj.weight.t() + last.attn.out_proj.bias + x
    v = v + mlp(last, layer_norm(v, last.ln_2))
    dense = layer_norm(v, visual.ln_post)[1:] @ visual.proj  # (hw, D)
    g = g[1:]  # (hw, W)
    # Heads: replicate-padded 3x3 conv and a 1x1 conv on unit-norm features.
    g_img = g.t().reshape(1, width, h, w)
    proj = F.conv2d(F.pad(g_img, (1, 1, 1, 1), mode="replicate"),
                    heads_state["obj_proj.weight"], heads_state["obj_proj.bias"])[0]
    proj = proj.reshape(proj.shape[0], -1).t()  # (hw, P)
    g_unit = g / g.norm(dim=1, keepdim=True)
    bkg_w, bkg_b = heads_state["bkg_decoder.weight"].reshape(-1), heads_state["bkg_decoder.bias"]
    obj_logit = g_unit @ bkg_w + bkg_b
    objectness = torch.sigmoid(obj_logit)
    proj_unit = proj / proj.norm(dim=1, keepdim=True)
    n = h * w
    probs = torch.zeros(text.shape[0], n)
    for a in range(n):
        weights = torch.tensor([float(proj_unit[a] @ proj_unit[b]) for b in range(n)])
        weights[weights < gamma] = 0.0
        pooled = (weights[:, None] * dense).sum(0) / (weights.sum() + 1e-6)
        cos = (text @ pooled) / pooled.norm()
        prob = torch.softmax(100 * cos, dim=0)
        if background and prob.max() < delta and objectness[a] <= 0.5:
            prob[0] = 1.0
        probs[:, a] = prob
    return probs.reshape(-1, h, w)
