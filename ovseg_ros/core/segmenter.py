"""The Segmenter: CLIP-DINOiser on RGB images with a vocabulary that can change at any time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import open_clip
import torch

from . import tiling
from .backends import choose_runtime, make_dense_encoder
from .backends.text_precision import choose_text_precision, set_text_dtype
from .config import RANDOM, SegmenterConfig
from .device import resolve_device
from .dinoiser import (
    DinoiserHeads,
    apply_background_rule,
    classify,
    guided_pool,
    patch_correlations,
)
from .errors import NumericalError
from .features import FrameFeatures
from .maskclip import DenseClipEncoder, normalise_pixels, pad_to_multiple
from .reproducible import small_work
from .results import SegmentationResult, results_from_device
from .settings import ConfigError, settings_of
from .stage_timer import StageTimer, stage_timer
from .text import IMAGENET_TEMPLATES, TextEmbeddingCache
from .transfer import FrameUploader, check_rgb, to_unit_float
from .vocabulary import BACKGROUND, Vocabulary, VocabularySnapshot, validate_prompts
from .weights import (
    default_cache_dir,
    file_sha256,
    is_weights_path,
    load_clip,
    load_state_dict,
    resolve_checkpoint,
)

log = logging.getLogger(__name__)
# What a running Segmenter may change (reconfigure): the dynamic settings, and stage profiling
# (benchmarks); the rest needs a new Segmenter.
DYNAMIC = frozenset(s.name for s in settings_of(SegmenterConfig) if s.dynamic) | {"profile"}


class _Active:
    """A vocabulary snapshot and its text matrix, swapped as one reference (atomic for readers)."""

    def __init__(self, snapshot: VocabularySnapshot, text: torch.Tensor, ids: torch.Tensor):
        self.snapshot = snapshot
        self.text = text  # (C, D) unit-norm, background row first when enabled
        self.ids = ids  # (C,) label id per channel
        self.names = ((BACKGROUND,) if snapshot.background else ()) + snapshot.names
        self.channel_ids = tuple(int(i) for i in ids.tolist())


class Segmenter:
    """CLIP-DINOiser segmentation. `set_prompts` may run on another thread than `segment`."""

    def __init__(self, config: SegmenterConfig | None = None,
                 ids_from: Vocabulary | None = None):
        """ids_from: the vocabulary of a Segmenter this one replaces; its label ids and version
        carry over (Vocabulary.carry_over)."""
        self.config = config = config or SegmenterConfig()  # frozen: swapped, never written
        self._default_threads = torch.get_num_threads()
        device = resolve_device(config.device)
        cache = Path(config.cache_dir) if config.cache_dir else None
        clip = load_clip(config.model, config.clip_weights, cache, config.seed)
        # Backend and precision: the rules, or on the CPU for auto a (cached) measurement of
        # this very encoder; `self.probe` keeps the measurement for diagnostics and benchmarks.
        self.runtime, self.probe = choose_runtime(config, device, clip.visual, cache)
        rt = self.runtime
        width = clip.visual.conv1.out_channels
        self.heads = DinoiserHeads(width)
        path = None
        if config.heads == RANDOM:
            torch.manual_seed(config.seed + 1)
            self.heads = DinoiserHeads(width)
        else:
            path = resolve_checkpoint(config.heads, cache, config.heads_sha256 or None)
            self.heads.load_published(load_state_dict(path), str(path))
        self.tokenizer = open_clip.get_tokenizer(config.model)
        # The text tower's dtype, chosen on its own (`text_precision`): converted from the fp32
        # weights, so a text dtype other than the image tower's loses nothing.
        self.text_choice = choose_text_precision(config, rt, clip, self.tokenizer,
                                                 IMAGENET_TEMPLATES, cache)
        if self.text_choice.dtype == rt.dtype:
            self.clip = clip.to(rt.device, rt.dtype).eval()
        else:
            self.clip = clip.to(rt.device).eval()
            self.clip.visual.to(rt.dtype)
            set_text_dtype(self.clip, self.text_choice.dtype)
        self.encoder = DenseClipEncoder(self.clip.visual)  # after the move: it copies a weight
        self.heads = self.heads.to(rt.device, rt.dtype).eval()
        # The dense forward: the encoder itself, or its ONNX export (built before any frame).
        self.dense = make_dense_encoder(self.encoder, rt, config.model, cache,
                                        config.onnx_spinning, config.threads)
        self.upload = FrameUploader(rt.device)
        # Names encoded by any earlier process are read from <cache_dir>/text (text_store).
        self.text_cache = TextEmbeddingCache(
            self.clip, self.tokenizer, rt,
            store_folder=Path(cache or default_cache_dir()) / "text", model=config.model)
        self.vocabulary = (ids_from.carry_over(config.background, config.label_ids)
                           if ids_from is not None
                           else Vocabulary(config.background, config.label_ids))
        self._update_lock = threading.Lock()
        self._active: _Active | None = None
        longest = max(IMAGENET_TEMPLATES, key=lambda t: len(self._tokens(t.format(""))))
        self._template_overhead = len(self._tokens(longest.format("")))
        if config.background:
            self.text_cache.embed([BACKGROUND])
        self.weights_id = _weights_id(config, None if config.heads == RANDOM else path)

    # ---- vocabulary -------------------------------------------------------------------------

    def _tokens(self, text: str) -> list[int]:
        return self.tokenizer.encode(text) if hasattr(self.tokenizer, "encode") else []

    def token_count(self, name: str) -> int:
        """Tokens of `name` in the longest template, start and end tokens included."""
        return len(self._tokens(name)) + self._template_overhead + 2

    def text_to_encode(self, prompts: Sequence[str]) -> list[str]:
        """Validate `prompts` (VocabularyError) and return the names whose text embedding is
        neither in memory nor on disk: what `set_prompts` would have to encode. The vocabulary
        does not change (names found on disk are read into the cache)."""
        return self.text_cache.load(self.validate(prompts))

    def validate(self, prompts: Sequence[str]) -> list[str]:
        """The normalised prompts, or VocabularyError naming every problem (the rules of
        `set_prompts`)."""
        return validate_prompts(prompts, self.token_count, 77, self.config.max_prompts,
                                self.config.background)

    def set_prompts(self, prompts: Sequence[str]) -> dict[str, int]:
        """Validate, encode what is new, and swap in the vocabulary. Returns name -> label id.

        Raises VocabularyError (and keeps the previous vocabulary) when the prompts are refused.
        """
        with self._update_lock:  # serialises writers (and reconfigure); readers never wait
            names = validate_prompts(prompts, self.token_count, 77, self.config.max_prompts,
                                     self.config.background)
            text = self.text_cache.embed(names)  # slow part, done before the swap
            snapshot = self.vocabulary.assign(names)
            ids = list(snapshot.ids)
            if snapshot.background:
                text = torch.cat([self.text_cache.embed([BACKGROUND]), text])
                ids = [0] + ids
            ids_t = torch.tensor(ids, dtype=torch.int32, device=self.runtime.device)
            self._active = _Active(snapshot, text, ids_t)
        return snapshot.as_dict()

    def reconfigure(self, **changes: object) -> None:
        """Change dynamic settings (threshold, max_prompts, threads; profile) of the running
        Segmenter.

        All or nothing: ConfigError naming every problem leaves the configuration as it was.
        The new configuration is swapped in as one reference, so a frame in flight sees either
        the old or the new values, never a mix.
        """
        static = sorted(set(changes) - DYNAMIC)
        if static:
            raise ConfigError(f"{', '.join(static)} cannot change while running (only "
                              f"{', '.join(sorted(DYNAMIC))} can): build a new Segmenter")
        with self._update_lock:
            config = replace(self.config, **changes)  # ConfigError on an invalid value
            active = self._active
            in_use = len(active.snapshot.names) if active else 0
            if config.max_prompts < in_use:
                raise ConfigError(f"max_prompts={config.max_prompts} is below the {in_use} "
                                  "prompts in use: remove prompts first")
            self.config = config

    def _apply_threads(self) -> None:
        """The `threads` setting, for the calling thread (PyTorch's count is per thread)."""
        want = self.config.threads or self._default_threads
        if torch.get_num_threads() != want:
            torch.set_num_threads(want)

    @property
    def snapshot(self) -> VocabularySnapshot | None:
        active = self._active
        return active.snapshot if active else None

    # ---- inference --------------------------------------------------------------------------

    def to_tensor(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (1, 3, H, W) float32 in [0, 1] on the device (a plain copy;
        frames go through `self.upload`, which reuses a pinned buffer)."""
        check_rgb(rgb)
        return to_unit_float(torch.from_numpy(np.ascontiguousarray(rgb))[None].to(
            self.runtime.device))

    @torch.inference_mode()
    def features(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CLIP forward. rgb (B, 3, H, W) in [0, 1] -> dense F (B, D, h, w), G (B, W, h, w)."""
        pixels = normalise_pixels(pad_to_multiple(rgb, self.encoder.patch))
        return self.dense(pixels.to(self.runtime.dtype))

    @torch.inference_mode()
    def patch_probabilities(
        self, dense: torch.Tensor, g: torch.Tensor, active: _Active,
        prior: torch.Tensor | None = None, check: bool = True,
        keep: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Heads, guided pooling, classification, optional class prior, background rule.

        prior: (C,) multiplicative factors per channel; the class probabilities are multiplied
        and renormalised before the background rule, so the rule sees the updated posterior.
        check: raise NumericalError on NaN/Inf here (a device sync); frames check their
        downloaded patch-grid arrays instead (`check_finite`), which needs none.
        keep: a list that receives the refined features F' (B, D, h, w) (no copy).
        Returns probabilities (B, C, h, w) float32 and objectness (B, h, w) float32.
        """
        proj = self.heads.correlation_features(g)
        objectness = self.heads.objectness(g).float()
        # Correlations and pooling are two (hw x hw) matmuls: run them in the runtime dtype
        # (bf16 about 2x cheaper on CPU; fp32 unchanged); pooling's row scale is removed by
        # classify's normalisation, which runs in fp32.
        pooled = guided_pool(dense, patch_correlations(proj), self.config.gamma)
        if keep is not None:
            keep.append(pooled)
        probs = classify(pooled.float(), active.text)
        if prior is not None:
            probs = probs * prior.view(1, -1, 1, 1)
            probs = probs / probs.sum(dim=1, keepdim=True).clamp_min(1e-12)
        if check:
            self.check_finite(bool(torch.isfinite(probs).all()
                                   and torch.isfinite(objectness).all()))
        if active.snapshot.background:
            probs = apply_background_rule(probs, objectness, self.config.delta)
        return probs, objectness

    def check_finite(self, finite: bool) -> None:
        """NaN would pass through argmax as a confident-looking label: refuse the frame."""
        if not finite:
            raise NumericalError(
                f"the model produced NaN/Inf at {self.runtime.precision}: an fp16 overflow (try "
                "precision bf16 or fp32) or corrupt CLIP weights")

    def _require_active(self) -> _Active:
        active = self._active
        if active is None:
            raise RuntimeError("no vocabulary: call set_prompts first")
        return active

    def processing_size(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """(H, W) an image of size `image_hw` is resized to before inference."""
        return tiling.short_side_size(image_hw[0], image_hw[1], self.config.input_size)

    def upsample(self, maps: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
        """Patch-grid maps (B, C, h, w) -> (B, C, H, W) at the input image size `image_hw`:
        the whole-mode path (bilinear to the padded processing size, padding cut, resize)."""
        size = self.processing_size(image_hw)
        return tiling.upsample_to_image(maps, self.encoder.patch, size, tuple(image_hw))

    def _prior_tensor(self, class_prior: Mapping[int, float] | None, active: _Active
                      ) -> torch.Tensor | None:
        if not class_prior:
            return None
        factors = torch.tensor([float(class_prior.get(cid, 1.0)) for cid in active.channel_ids])
        if self.runtime.device.type == "cuda":  # pageable copies would wait for the stream
            factors = factors.pin_memory()
        return factors.to(self.runtime.device, non_blocking=True)

    @torch.inference_mode()
    def segment(self, rgb: np.ndarray, class_prior: Mapping[int, float] | None = None
                ) -> SegmentationResult:
        """Segment one (H, W, 3) uint8 RGB image with the current vocabulary."""
        return self.segment_batch([rgb], class_prior)[0]

    @torch.inference_mode()
    def segment_batch(self, images: Sequence[np.ndarray],
                      class_prior: Mapping[int, float] | None = None
                      ) -> list[SegmentationResult]:
        """Segment several images; images of one size share one forward pass.

        class_prior: optional {label id: factor > 0}; channels not listed get 1 (no effect).
        Keyed by id so it stays aligned whatever vocabulary this batch runs with.
        """
        active = self._require_active()  # one vocabulary for the whole batch
        self._apply_threads()
        prior = self._prior_tensor(class_prior, active)
        results: list[SegmentationResult | None] = [None] * len(images)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(images):
            groups.setdefault(tuple(img.shape), []).append(i)
        for indices in groups.values():
            group = self._segment_same_size([images[i] for i in indices], active, prior)
            for i, res in zip(indices, group, strict=True):
                results[i] = res
        return results  # type: ignore[return-value]

    def _segment_same_size(self, images: Sequence[np.ndarray], active: _Active,
                           prior: torch.Tensor | None = None) -> list[SegmentationResult]:
        """One batch of same-size frames: no device sync until the results' one download."""
        h0, w0 = images[0].shape[:2]
        hs, ws = self.processing_size((h0, w0))
        p = self.encoder.patch
        with small_work(len(images) * -(-hs // p) * -(-ws // p)):
            return self._segment_same_size_now(images, active, prior)

    def _segment_same_size_now(self, images: Sequence[np.ndarray], active: _Active,
                               prior: torch.Tensor | None = None) -> list[SegmentationResult]:
        cfg = self.config  # one configuration for the whole batch
        timer = stage_timer(self.runtime.device, cfg.profile)
        batch = self.upload(images)
        h0, w0 = batch.shape[-2:]
        batch = tiling.resize(batch, tiling.short_side_size(h0, w0, cfg.input_size))
        timer.mark("preprocess")
        if cfg.mode == "whole":
            dense, g = self.features(batch)
            timer.mark("clip_forward")
            kept: list[torch.Tensor] = []
            probs, objectness = self.patch_probabilities(dense, g, active, prior, check=False,
                                                         keep=kept)
            timer.mark("heads_pooling")
            pixels = self.upsample(probs, (h0, w0))
        else:
            probs, objectness, pixels = self._slide(batch, active, prior, timer)
            pixels = tiling.resize(pixels, (h0, w0))
        results = results_from_device(pixels, probs, objectness, active.channel_ids,
                                      active.names, cfg.threshold, active.snapshot.version,
                                      ids=active.ids)
        timer.mark("upsample_argmax")
        self.check_finite(all(np.isfinite(r.patch_probs).all() and np.isfinite(r.objectness).all()
                              for r in results))
        timings = timer.result()
        for b, res in enumerate(results):
            res.timings = dict(timings)
            res.vocabulary = active.snapshot
            if cfg.mode == "whole" and kept:  # views of the batch's F': no copy
                res.features = FrameFeatures(kept[0][b], active.text, prior, self.encoder.patch,
                                             tuple(batch.shape[-2:]), (h0, w0))
        return results

    def _slide(self, batch: torch.Tensor, active: _Active, prior: torch.Tensor | None,
               timer: StageTimer):
        """Sliding windows over (B, 3, H, W); returns patch-grid probs, objectness, pixel probs."""
        cfg = self.config
        b, _, h, w = batch.shape
        boxes = tiling.windows(h, w, cfg.window, cfg.stride)
        crops = torch.cat([batch[:, :, y0:y1, x0:x1] for y0, y1, x0, x1 in boxes])
        dense, g = self.features(crops)
        timer.mark("clip_forward")
        probs, objectness = self.patch_probabilities(dense, g, active, prior, check=False)
        timer.mark("heads_pooling")
        win = crops.shape[-2:]
        up = tiling.upsample_patches(probs, self.encoder.patch, win)
        obj_up = tiling.upsample_patches(objectness[:, None], self.encoder.patch, win)
        total = torch.zeros(b, probs.shape[1], h, w, device=batch.device)
        saliency = torch.zeros(b, 1, h, w, device=batch.device)
        count = torch.zeros(1, 1, h, w, device=batch.device)
        for k, (y0, y1, x0, x1) in enumerate(boxes):
            total[:, :, y0:y1, x0:x1] += up[k * b:(k + 1) * b]
            saliency[:, :, y0:y1, x0:x1] += obj_up[k * b:(k + 1) * b]
            count[:, :, y0:y1, x0:x1] += 1
        total /= count
        saliency /= count
        # Patch-level maps in slide mode: the stitched maps averaged over patch-sized cells.
        p = self.encoder.patch
        pool = torch.nn.functional.adaptive_avg_pool2d
        grid = (max(1, -(-h // p)), max(1, -(-w // p)))
        return pool(total, grid), pool(saliency, grid)[:, 0], total


def _weights_id(config: SegmenterConfig, heads: Path | None) -> str:
    """Which weights the features come from: the CLIP weights (tag, or file name) and the
    heads' sha256 prefix ('random-<seed>' for seeded random weights)."""
    clip = (f"random-{config.seed}" if config.clip_weights == RANDOM
            else Path(config.clip_weights).name if is_weights_path(config.clip_weights)
            else config.clip_weights)
    head = f"random-{config.seed + 1}" if heads is None else file_sha256(heads)[:16]
    return f"{clip}+heads:{head}"
