"""The core's configuration: what selects weights, device and inference, and when keyframes run.

Every user-facing field is a `setting` (see settings.py): the single source of truth for its
name, default, range, doc and whether it may change at run time. The node's parameters, the
launch arguments and the `ovseg` options are derived from these classes. Configs are frozen:
a running Segmenter changes a dynamic setting only through its validated `reconfigure`.

Torch-free, so the launch file and the docs generator can import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .settings import check_config, setting
from .vocabulary import LABEL_IDS

DEFAULT_MODEL = "ViT-B-16"
DEFAULT_CLIP_WEIGHTS = "laion2b_s34b_b88k"
# The authors' published head checkpoint (about 7 MB).
DEFAULT_HEADS_URL = "https://github.com/wysoczanska/clip_dinoiser/raw/main/checkpoints/last.pt"
RANDOM = "random"  # weights source: seeded random weights (tests, the offline demo)
MODES = ("whole", "slide")
# int8: the dense CLIP encoder through ONNX Runtime's dynamic quantisation (CPU only, see
# core/backends); the torch parts (heads, pooling, text, CLIP-DIY) then run in fp32.
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
BACKENDS = ("auto", "torch", "onnxruntime")
# How `auto` decides on the CPU (core/backends/probe.py): measure once per machine and reuse the
# cached decision, measure at every start, or use the flag rule without measuring.
PROBE_MODES = ("cached", "always", "off")
HALF_LIFE_UNITS = ("frames", "seconds")
# CLIP-DINOiser's published thresholds (doc/architecture.md, "The methods").
GAMMA = 0.2  # patch correlations below this do not take part in guided pooling
DELTA = 0.99  # below this top probability a non-object patch becomes background

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$", re.IGNORECASE)
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def _device_problem(value: str) -> str | None:
    if _DEVICE.match(value.strip()):
        return None
    return f"device={value!r}: use auto, cpu, cuda or cuda:N"


def _sha256_problem(value: str) -> str | None:
    if not value or _SHA256.match(value):
        return None
    return f"heads_sha256={value[:80]!r} is not empty or 64 hexadecimal digits"


@dataclass(frozen=True)
class SegmenterConfig:
    """Weights, device, precision and CLIP-DINOiser inference settings."""

    model: str = setting(DEFAULT_MODEL, group="model", doc="""
        open_clip model name; the published head checkpoint fits ViT-B-16.""")
    clip_weights: str = setting(DEFAULT_CLIP_WEIGHTS, group="model", doc="""
        CLIP weights: an open_clip pretrained tag (downloaded into cache_dir once), a local
        weights file, or 'random' (seeded random weights: meaningless labels, for tests).""")
    heads: str = setting(DEFAULT_HEADS_URL, group="model", doc="""
        CLIP-DINOiser head checkpoint: a local path, an https URL (downloaded into cache_dir
        once), or 'random'.""")
    heads_sha256: str = setting("", group="model", check=_sha256_problem, doc="""
        Expected sha256 of the head checkpoint (64 hex digits); empty = not checked.""")
    cache_dir: str = setting("", group="model", doc="""
        Download cache; empty = $OVSEG_CACHE, else ~/.cache/ovseg_ros.""")
    device: str = setting("auto", group="compute", check=_device_problem, doc="""
        auto, cpu, cuda or cuda:N. Asking for CUDA where there is none is an error.""")
    precision: str = setting("auto", group="compute", choices=PRECISIONS, doc="""
        Compute dtype. auto on the CPU = the fastest exact candidate (fp32 on torch and
        onnxruntime) or bf16/fp16 where the CPU runs them natively, measured by a short probe
        (see auto_probe); on CUDA bf16 (fp16 on cards without bf16). bf16/fp16 on a CPU without
        them is emulated and many times slower. int8 = the dense CLIP encoder dynamically
        quantised by ONNX Runtime (CPU only, needs the onnxruntime extra; an approximation
        whose effect on accuracy with real weights is not measured yet: see doc/evaluation.md
        to measure it), the rest fp32.""")
    backend: str = setting("auto", group="compute", choices=BACKENDS, doc="""
        What runs the dense CLIP encoder (about 95% of a frame). auto on the CPU = whichever
        the probe measured fastest (see auto_probe), torch on CUDA and for bf16/fp16;
        onnxruntime = CPU, fp32 or int8, exported once into cache_dir/onnx (needs the
        onnxruntime extra).""")
    auto_probe: str = setting("cached", group="compute", choices=PROBE_MODES, doc="""
        How backend/precision auto decide on the CPU. cached = time the candidates on the
        dense encoder once (a few passes each within auto_probe_budget_s; a missing ONNX
        export is made first, once, outside the budget) and reuse the decision, stored in
        cache_dir/probe and keyed by CPU model, flags, cores, threads, library versions, model
        and input size; always = measure at every start; off = the flag rule, no measurement:
        torch bf16 on CPUs reporting native bf16, else onnxruntime fp32 when installed, else
        torch fp32.""")
    auto_probe_budget_s: float = setting(6.0, group="compute", low=0.1, high=600.0, doc="""
        Seconds of forward passes the probe may spend beyond the two each candidate always
        gets (a warm-up and a timed pass); exports and session set-up are not counted.""")
    onnx_spinning: bool = setting(False, group="compute", doc="""
        Let onnxruntime's idle worker threads busy-wait for the next op. Off: on a shared CPU
        (camera drivers, other nodes) spinning threads take the cores others need; under
        load it measured as fast or faster off, and on an idle machine too, since the torch
        heads that follow the encoder compete with the spinning threads (doc/performance.md).
        OMP_WAIT_POLICY=PASSIVE in the environment also turns it off.""")
    auto_int8: bool = setting(False, group="compute", doc="""
        Let backend/precision auto consider onnxruntime int8 too (an approximation, see
        precision).""")
    threads: int = setting(0, group="compute", low=0, high=1024, dynamic=True, doc="""
        CPU threads for inference; 0 = PyTorch's default (one per core). Fewer leave cores to
        the camera driver and other nodes.""")
    mode: str = setting("whole", group="inference", choices=MODES, doc="""
        whole: one forward pass per frame; slide: 448 px windows with stride 224 (the paper's
        protocol, several times slower).""")
    input_size: int = setting(448, group="inference", low=0, high=4096, doc="""
        Short side in pixels the frame is resized to before inference (the long side is capped
        at input_size * 2048 / 448); 0 keeps the frame size. Outputs keep the input size.""")
    background: bool = setting(True, group="inference", doc="""
        Add the implicit class 'background' (id 0) and CLIP-DINOiser's objectness rule; when
        false, id 0 only means 'below threshold'.""")
    threshold: float = setting(0.0, group="inference", low=0.0, high=1.0, dynamic=True, doc="""
        Pixels whose confidence is below this get id 0 (unlabelled).""")
    max_prompts: int = setting(256, group="inference", low=1, high=4096, dynamic=True, doc="""
        Most class names one vocabulary may hold; a longer list is refused and the previous
        vocabulary kept. Cannot be set below the number of prompts in use.""")
    label_ids: str = setting("stable", group="vocabulary", choices=LABEL_IDS, doc="""
        Ids for new class names. stable: an id is never reused for another name while the
        node runs, for mappers that accumulate labels over time (Hydra, Kimera); past 255
        names ever used the label image becomes mono16. reuse: a new name takes the lowest id
        that no name of the new vocabulary holds, so ids stay within the vocabulary's size
        and the label image mono8 up to 255 classes: for Nav2's semantic segmentation layer,
        which reads one byte per pixel. Names kept across a change keep their ids either way;
        read ids with the label map of the frame's vocabulary_version.""")
    # Internal constants of the method (not user settings).
    window: int = 448  # slide mode: window side and stride
    stride: int = 224
    gamma: float = GAMMA
    delta: float = DELTA
    seed: int = 0  # for "random" weights
    # Time each stage on CUDA too (CUDA events; SegmentationResult.timings), for benchmarks:
    # CPU frames are always timed per stage (free there); CUDA frames without it give only
    # {"frame": seconds}, since per-stage times would need a device sync per stage.
    profile: bool = False

    def __post_init__(self) -> None:
        check_config(self, [
            None if self.window >= 16 and 0 < self.stride <= self.window
            else "need window >= 16 and 0 < stride <= window",
            None if 0.0 <= self.delta <= 1.0 else "delta must lie in [0, 1]",
            None if -1.0 <= self.gamma <= 1.0 else "gamma must lie in [-1, 1]",
        ])


@dataclass(frozen=True)
class ClipDiyConfig:
    """CLIP-DIY's crop geometry and scoring; the defaults are the paper's. Which CLIP runs it
    is a keyframe setting (KeyframeConfig.keyframe_model)."""

    image_size: tuple[int, int] = (256, 256)  # (H, W) the frame is resized to
    crop_sizes: tuple[int, ...] = (256, 128, 64)
    crop_strides: tuple[int, ...] = ()  # one per crop size; empty = half of each crop
    scale_weights: tuple[float, ...] = ()  # one per crop size; empty = all 1
    template: str = "a photo of a {}."  # a single prompt template
    logit_scale: float = 100.0  # CLIP's trained logit scale (exp(4.6052) in every release)
    # Crops per encode_image call; 0 = auto: 4 on CPU (cache-friendly: 0.76x the time of one
    # 59-crop call, `python -m ovseg_ros.bench --only clipdiy`), 64 on GPU (one call).
    max_batch: int = 0

    def strides(self) -> tuple[int, ...]:
        return tuple(self.crop_strides) or tuple(max(1, c // 2) for c in self.crop_sizes)

    def weights_per_scale(self) -> tuple[float, ...]:
        return tuple(self.scale_weights) or (1.0,) * len(self.crop_sizes)

    def __post_init__(self) -> None:
        weights = self.weights_per_scale()
        check_config(self, [
            None if len(self.image_size) == 2 and min(self.image_size) >= 1
            else f"image_size must be (H, W) >= 1, got {self.image_size}",
            None if self.crop_sizes and min(self.crop_sizes) >= 1
            else "crop_sizes must be a non-empty list of sizes >= 1",
            None if len(self.strides()) == len(self.crop_sizes) and min(self.strides(),
                                                                        default=0) >= 1
            else "crop_strides needs one stride >= 1 per crop size",
            None if len(weights) == len(self.crop_sizes) and min(weights, default=-1) >= 0
            and sum(weights) > 0 else "scale_weights needs one weight >= 0 per crop size",
            None if "{}" in self.template else "template must contain '{}' for the class name",
            None if self.logit_scale > 0 and self.max_batch >= 0
            else "logit_scale must be > 0 and max_batch >= 0 (0 = auto)",
        ])


@dataclass(frozen=True)
class KeyframeConfig:
    """When CLIP-DIY keyframes run and how they are fused into the frame stream."""

    keyframes: bool = setting(False, group="keyframes", doc="""
        Load CLIP-DIY so keyframes can run: on ~/keyframe requests (CLI: never), after a
        vocabulary change and on the schedule below. A schedule > 0 turns this on as well.""")
    keyframe_every_n: int = setting(0, group="keyframes", low=0, high=1000000, doc="""
        Run a CLIP-DIY keyframe every N frames; 0 = no frame schedule.""")
    keyframe_every_s: float = setting(0.0, group="keyframes", low=0.0, high=86400.0, doc="""
        Run a keyframe at least every S seconds of frame stamps; 0 = no time schedule.""")
    keyframe_on_prompt_change: bool = setting(True, group="keyframes", doc="""
        Run a keyframe on the first frame after a vocabulary change (when keyframes are on).""")
    keyframe_fusion_weight: float = setting(0.5, group="keyframes", low=0.0, high=1.0, doc="""
        Weight w of CLIP-DIY's scores when fused into the keyframe's CLIP-DINOiser scores,
        p ~ p_dino^(1-w) * p_diy^w; 0 = prior only.""")
    prior_half_life_frames: float = setting(30.0, group="keyframes", low=0.0, high=100000.0,
                                            doc="""
        Frames after which a keyframe's class-presence prior has decayed to half its weight;
        0 = no prior (unless prior_half_life_s is set).""")
    prior_half_life_s: float = setting(0.0, group="keyframes", low=0.0, high=86400.0, doc="""
        Seconds of frame stamps after which the prior has decayed to half; > 0 replaces
        prior_half_life_frames.""")
    keyframe_model: str = setting("", group="keyframes", doc="""
        open_clip model for CLIP-DIY; empty = reuse the segmentation CLIP (no extra weights).
        The CLIP-DIY paper uses ViT-B-32 with laion2b_s34b_b79k.""")
    keyframe_weights: str = setting("", group="keyframes", doc="""
        Weights for keyframe_model: a pretrained tag, a local file or 'random'; empty when
        keyframe_model is empty.""")
    # Internal (front ends choose them, users do not).
    asynchronous: bool = True  # False: compute and fuse on the same frame (CLI, tests)
    prior_floor: float = 0.1  # smallest factor a class the keyframe found absent gets
    clip_diy: ClipDiyConfig = field(default_factory=ClipDiyConfig)

    @property
    def enabled(self) -> bool:
        return self.keyframes or self.keyframe_every_n > 0 or self.keyframe_every_s > 0

    @property
    def prior(self) -> bool:
        return self.prior_half_life_frames > 0 or self.prior_half_life_s > 0

    @property
    def prior_half_life(self) -> tuple[float, str]:
        """(half-life, unit in HALF_LIFE_UNITS); seconds win when both are set."""
        if self.prior_half_life_s > 0:
            return self.prior_half_life_s, "seconds"
        return self.prior_half_life_frames, "frames"

    def __post_init__(self) -> None:
        check_config(self, [
            None if bool(self.keyframe_model) == bool(self.keyframe_weights)
            else "keyframe_model and keyframe_weights go together: set both (a separate "
                 "CLIP for CLIP-DIY) or neither (reuse the segmentation CLIP)",
            None if 0.0 < self.prior_floor <= 1.0 else "prior_floor must lie in (0, 1]",
        ])
