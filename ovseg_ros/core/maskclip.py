"""MaskCLIP dense features from an open_clip VisionTransformer, read by calling its blocks directly.

One forward gives two things:
- F: the projected dense feature map (B, D, h, w) from the last block's value path (MaskCLIP);
- G: the `ln_2` output of an intermediate block (B, W, h, w), the input of CLIP-DINOiser's heads.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from .reproducible import one_thread

# OpenAI CLIP normalisation; every supported open_clip ViT was trained with it.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def check_supported(visual: nn.Module) -> None:
    """Raise ValueError unless `visual` is a plain open_clip ViT with token pooling."""
    needed = ("conv1", "class_embedding", "positional_embedding", "ln_pre", "transformer",
              "ln_post", "proj")
    missing = [name for name in needed if not hasattr(visual, name)]
    if missing:
        raise ValueError(f"not an open_clip VisionTransformer (missing {', '.join(missing)})")
    if getattr(visual, "attn_pool", None) is not None:
        raise ValueError("open_clip ViTs with attentional pooling are not supported")
    if not getattr(visual.transformer, "batch_first", True):
        raise ValueError("the vision transformer must run batch-first")
    if not isinstance(visual.transformer.resblocks[-1].attn, nn.MultiheadAttention):
        raise ValueError("only open_clip's default residual attention blocks are supported")
    if visual.proj is None:
        raise ValueError("the vision tower has no output projection")


class PositionalEmbedding(nn.Module):
    """The ViT positional table resized to any patch grid, cached per grid size.

    Bicubic, align_corners=False, class-token row kept as is (MaskCLIP's rule).
    """

    def __init__(self, table: torch.Tensor, grid: tuple[int, int]):
        super().__init__()
        self.grid = grid
        self.table = table  # (1 + gh * gw, W), shared with the open_clip module
        self._cache: dict[tuple[int, int, torch.dtype, torch.device], torch.Tensor] = {}

    def forward(self, h: int, w: int) -> torch.Tensor:
        """(1 + h * w, W) table for an h x w patch grid."""
        key = (h, w, self.table.dtype, self.table.device)
        cached = self._cache.get(key)
        if cached is None and (h, w) == tuple(self.grid):
            cached = self._cache[key] = self.table  # the trained grid: used as is
        if cached is None:
            gh, gw = self.grid
            cls_row, patches = self.table[:1], self.table[1:]
            patches = patches.reshape(1, gh, gw, -1).permute(0, 3, 1, 2).float()
            with one_thread():  # cached: its bits must not depend on who made it first
                patches = F.interpolate(patches, size=(h, w), mode="bicubic",
                                        align_corners=False)
            patches = patches.flatten(2)[0].t().to(self.table.dtype)
            cached = torch.cat([cls_row, patches], dim=0)
            self._cache[key] = cached
        return cached

    def clear(self) -> None:
        self._cache.clear()


def value_projection(block: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The value third of a block's packed in_proj, as tensors of their own: (W, W), (W,).

    Copied, not sliced: a slice is a view at a storage offset into the packed (3W, W) weight,
    which inductor's weight freezing (torch.compile, max-autotune) mis-read, giving a wrong F.
    """
    attn: nn.MultiheadAttention = block.attn
    width = attn.embed_dim
    w_v = attn.in_proj_weight.detach()[2 * width:].clone()
    bias = attn.in_proj_bias
    return w_v, (bias.detach()[2 * width:].clone() if bias is not None else None)


def value_path(block: nn.Module, x: torch.Tensor, w_v: torch.Tensor,
               b_v: torch.Tensor | None) -> torch.Tensor:
    """MaskCLIP's last block: the attention is replaced by its value projection.

    x: (B, N, W) block input; w_v, b_v from `value_projection(block)`. Returns (B, N, W).
    Only the value third of in_proj is computed: queries and keys would be thrown away.
    """
    v = F.linear(block.ln_1(x), w_v, b_v)
    x = x + block.ls_1(block.attn.out_proj(v))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def block_with_ln2(block: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A standard residual block that also returns its `ln_2` output.

    (B, N, W) -> two (B, N, W) tensors.
    """
    x = x + block.ls_1(block.attention(q_x=block.ln_1(x)))
    g = block.ln_2(x)
    return x + block.ls_2(block.mlp(g)), g


def patch_grid(pixels: torch.Tensor, patch: int) -> tuple[int, int]:
    """The patch grid (h, w) of pixels (B, 3, H, W) whose H and W are multiples of `patch`."""
    return pixels.shape[-2] // patch, pixels.shape[-1] // patch


def input_tokens(visual: nn.Module, table: torch.Tensor, pixels: torch.Tensor
                 ) -> tuple[torch.Tensor, int, int]:
    """Normalised pixels (B, 3, H, W) and the positional table (1 + h * w, W) for their patch
    grid -> class + patch tokens with positions, after ln_pre: (B, 1 + h * w, W), and h, w."""
    x = visual.conv1(pixels)
    b, width, h, w = x.shape
    x = x.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.to(x.dtype).view(1, 1, width).expand(b, 1, width)
    x = torch.cat([cls, x], dim=1) + table.to(x.dtype)
    return visual.ln_pre(visual.patch_dropout(x)), h, w


class GlobalClipEncoder(nn.Module):
    """open_clip's `encode_image` (unnormalised) for class-token ViTs.

    Every product runs over all tokens (B * N rows) and the class token is taken at the end:
    products over the class tokens alone (B rows, a few crops) would round differently at
    different thread counts (reproducible.py); the patch tokens' share of the last block and
    the projection costs about 8% more than the class token alone.

    Input pixels: (B, 3, H, W) normalised, multiples of the patch size. Output: (B, D).
    """

    def __init__(self, visual: nn.Module):
        super().__init__()
        check_supported(visual)
        if getattr(visual, "pool_type", "tok") != "tok":
            raise ValueError("only class-token pooling has a single-token last block")
        self.visual = visual
        self.patch = visual.conv1.kernel_size[0]
        self.pos = PositionalEmbedding(visual.positional_embedding, tuple(visual.grid_size))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x, _, _ = input_tokens(self.visual, self.pos(*patch_grid(pixels, self.patch)), pixels)
        for block in self.visual.transformer.resblocks:
            x = block(x)
        # ln_post is per token, so before or after pooling (final_ln_after_pool) is the same.
        return (self.visual.ln_post(x) @ self.visual.proj)[:, 0]


class DenseClipEncoder(nn.Module):
    """Dense MaskCLIP features and intermediate features of an open_clip ViT.

    Input pixels: (B, 3, H, W) already normalised, H and W multiples of the patch size.
    Output: F (B, D, h, w) projected features, G (B, W, h, w) `ln_2` features of
    `feature_block`, with h = H / patch and w = W / patch.

    The last block's value projection is copied at construction (`value_projection`): build
    the encoder after loading weights, and move it (`.to`) with the model.
    """

    def __init__(self, visual: nn.Module, feature_block: int = -3):
        super().__init__()
        check_supported(visual)
        self.visual = visual
        self.patch = visual.conv1.kernel_size[0]
        blocks = len(visual.transformer.resblocks)
        self.feature_index = feature_block % blocks
        if self.feature_index == blocks - 1:
            raise ValueError("the head features cannot come from the last block")
        self.pos = PositionalEmbedding(visual.positional_embedding, tuple(visual.grid_size))
        w_v, b_v = value_projection(visual.transformer.resblocks[-1])
        self.register_buffer("value_weight", w_v, persistent=False)
        self.register_buffer("value_bias", b_v, persistent=False)

    @property
    def width(self) -> int:
        return self.visual.conv1.out_channels

    @property
    def embed_dim(self) -> int:
        return self.visual.proj.shape[1]

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_with_table(pixels, self.pos(*patch_grid(pixels, self.patch)))

    def forward_with_table(self, pixels: torch.Tensor, table: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` with the positional table (1 + h * w, W) given (the ONNX graph's inputs:
        one exported file then serves every input size)."""
        x, h, w = input_tokens(self.visual, table, pixels)
        blocks = self.visual.transformer.resblocks
        g = None
        for i, block in enumerate(blocks[:-1]):
            if i == self.feature_index:
                x, g = block_with_ln2(block, x)
            else:
                x = block(x)
        x = self.visual.ln_post(value_path(blocks[-1], x, self.value_weight, self.value_bias))
        dense = x[:, 1:] @ self.visual.proj  # (B, hw, D)
        b = dense.shape[0]
        dense = dense.transpose(1, 2).reshape(b, -1, h, w)
        g = g[:, 1:].transpose(1, 2).reshape(b, -1, h, w)
        return dense, g


@functools.lru_cache(maxsize=16)
def _clip_stats(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP's mean and std as (1, 3, 1, 1) tensors, made once per device and dtype (on CUDA a
    new small tensor per frame is a blocking host-to-device copy)."""
    with torch.inference_mode(False):  # plain tensors, usable inside and outside inference mode
        mean = torch.tensor(CLIP_MEAN, dtype=dtype).view(1, 3, 1, 1).to(device)
        std = torch.tensor(CLIP_STD, dtype=dtype).view(1, 3, 1, 1).to(device)
    return mean, std


def normalise_pixels(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> CLIP-normalised, same shape and dtype."""
    mean, std = _clip_stats(rgb.device, rgb.dtype)
    return (rgb - mean) / std


def pad_to_multiple(rgb: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad (B, C, H, W) at the bottom and right so H and W are multiples of `multiple`.

    Padding happens on [0, 1] pixels before normalisation, as the published code does.
    """
    h, w = rgb.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h or pad_w:
        rgb = F.pad(rgb, (0, pad_w, 0, pad_h), value=0.0)
    return rgb
