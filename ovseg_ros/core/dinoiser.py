"""CLIP-DINOiser: two light heads on CLIP's intermediate features, guided pooling, background rule.

Paper: Wysoczanska et al., "CLIP-DINOiser: Teaching CLIP a few DINO tricks", ECCV 2024.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from .config import DELTA, GAMMA
from .reproducible import product
from .weights import WeightsError, check_state_dict, load_state_dict

PROJ_DIM = 256


class DinoiserHeads(nn.Module):
    """`obj_proj` (patch correlations) and `bkg_decoder` (objectness) on features G (B, W, h, w).

    Attribute names match the published checkpoint keys.
    """

    def __init__(self, width: int = 768, proj_dim: int = PROJ_DIM, kernel: int = 3):
        super().__init__()
        self.obj_proj = nn.Conv2d(width, proj_dim, kernel, padding=kernel // 2,
                                  padding_mode="replicate")
        self.bkg_decoder = nn.Conv2d(width, 1, 1)

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in self.state_dict().items()}

    def load_published(self, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
        """Load a validated state dict; any missing/extra key or wrong shape raises WeightsError."""
        check_state_dict(state, self.expected_shapes(), source)
        self.load_state_dict(dict(state), strict=True)

    def correlation_features(self, g: torch.Tensor) -> torch.Tensor:
        """(B, W, h, w) -> unit-norm projected features (B, P, h, w)."""
        return F.normalize(self.obj_proj(g), dim=1)

    def objectness(self, g: torch.Tensor) -> torch.Tensor:
        """(B, W, h, w) -> objectness probability (B, h, w); the head reads unit-norm G.

        The 1x1 conv with one output channel runs as a matmul: PyTorch's CPU convolution
        splits that reduction by thread count, so its bits would depend on `threads`."""
        b, width, h, w = g.shape
        weight = self.bkg_decoder.weight.view(width, 1).to(g.dtype)
        unit = F.normalize(g, dim=1).reshape(b, width, h * w).transpose(1, 2)  # (B, hw, W)
        logits = product(unit, weight) + self.bkg_decoder.bias.to(g.dtype)  # (B, hw, 1)
        return torch.sigmoid(logits).view(b, h, w)


def check_heads_file(path: Path, model_name: str) -> None:
    """Load a head checkpoint and check it fits `model_name`'s width, as the Segmenter does
    (WeightsError naming the file and the problem); for `ovseg weights`."""
    cfg = open_clip.get_model_config(model_name)
    if not cfg:
        raise WeightsError(f"unknown open_clip model {model_name!r}")
    expected = DinoiserHeads(cfg["vision_cfg"]["width"]).expected_shapes()
    check_state_dict(load_state_dict(path), expected, str(path))


def patch_correlations(proj: torch.Tensor) -> torch.Tensor:
    """Cosine correlations between all patches: (B, P, h, w) unit-norm -> (B, hw, hw)."""
    flat = proj.flatten(2)
    return product(flat.transpose(1, 2), flat)


def guided_pool(dense: torch.Tensor, corr: torch.Tensor, gamma: float = GAMMA) -> torch.Tensor:
    """Refine dense features by correlation-weighted averaging.

    dense (B, D, h, w), corr (B, hw, hw) -> (B, D, h, w):
    F'_n = sum_m C_nm F_m / (sum_m C_nm + 1e-6), with C zeroed below gamma.
    """
    b, d, h, w = dense.shape
    # A falsy gamma keeps every correlation, negative ones included (published behaviour).
    weights = corr.masked_fill(corr < gamma, 0.0) if gamma else corr
    pooled = product(dense.flatten(2), weights.transpose(1, 2))  # (B, D, hw): sum_m C_nm F_m
    pooled = pooled / (weights.sum(dim=-1).unsqueeze(1) + 1e-6)
    return pooled.reshape(b, d, h, w)


def classify(dense: torch.Tensor, text: torch.Tensor, scale: float = 100.0) -> torch.Tensor:
    """softmax(scale * cosine) over classes.

    dense (B, D, h, w), text (C, D) unit-norm -> (B, C, h, w).
    """
    # Pixels as the product's rows and a softmax over the last dimension (reproducible.py);
    # the result is a permuted view.
    b, _, h, w = dense.shape
    unit = F.normalize(dense, dim=1).flatten(2).transpose(1, 2)  # (B, hw, D)
    logits = product(unit, text.T).view(b, h, w, -1)
    return torch.softmax(scale * logits, dim=-1).permute(0, 3, 1, 2)


def apply_background_rule(
    probs: torch.Tensor, objectness: torch.Tensor, delta: float = DELTA, background: int = 0
) -> torch.Tensor:
    """Patches that are uncertain (top prob < delta) and not salient (objectness <= 0.5) become
    background: that channel is set to 1.0, the other channels keep their values (as published).

    probs (B, C, h, w), objectness (B, h, w) -> new (B, C, h, w); works for any batch size.
    """
    uncertain = probs.amax(dim=1) < delta
    mask = uncertain & (objectness <= 0.5)
    out = probs.clone()
    out[:, background] = torch.where(mask, torch.ones_like(out[:, background]), out[:, background])
    return out
