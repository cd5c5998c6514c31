"""`ovseg weights [--download]`: the weights files' report, from the core's own look-ups
(core/weight_paths.py) and loads (core/weights.py). Finding files imports no torch: only a
file that is there is loaded (to check it), so a machine without the files gets its answer at
once.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from ovseg_ros.core import weight_paths as paths
from ovseg_ros.core.config import DEFAULT_HEADS_URL, RANDOM, KeyframeConfig, SegmenterConfig
from ovseg_ros.core.settings import settings_of
from ovseg_ros.settings.options import add_setting_options

SETTINGS = ("model", "clip_weights", "heads", "heads_sha256", "cache_dir", "keyframe_model",
            "keyframe_weights")
MB = 1 << 20
DESCRIPTION = (
    "Where each weights file (the CLIP weights, the CLIP-DINOiser heads, CLIP-DIY's CLIP when "
    "it has its own) is looked for and found, with its size and sha256, checked by loading it "
    "as the node does. For a missing file: the exact URL and the path to put it at, so a robot "
    "without network can be given the files by hand; --download fetches what is missing where "
    "there is network. Exit code 0 when every file is there and loads, 1 otherwise.")
EPILOG = ("example: ovseg weights --download   (then the node and `ovseg segment` start "
          "offline)")


@dataclass
class WeightFile:
    """One weights source and what was found for it."""

    what: str  # "CLIP weights ViT-B-16/laion2b_s34b_b88k", "heads <url>"
    looked_for: list[str] = field(default_factory=list)  # where, in order, with why
    found: Path | None = None
    url: str = ""  # where to download it from (missing files)
    target: Path | None = None  # where to put a download made by hand
    problem: str = ""  # unreadable, corrupt or not fitting: what and what to do
    random: bool = False

    @property
    def ok(self) -> bool:
        return self.random or (self.found is not None and not self.problem)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="where the model's weights files are, or where to put "
                       "them; --download fetches them", description=DESCRIPTION, epilog=EPILOG)
    by_name = {s.name: s for s in settings_of(SegmenterConfig) + settings_of(KeyframeConfig)}
    add_setting_options(p, [by_name[n] for n in SETTINGS])
    p.add_argument("--download", action="store_true",
                   help="download what is missing (needs network; progress on stderr)")
    p.set_defaults(handler=run)


def clip_file(model: str, weights: str, cache: Path | None) -> WeightFile:
    """The CLIP weights source `weights` of `model`: a tag, a file or random."""
    if weights in ("", RANDOM):
        return WeightFile(f"CLIP weights {model}: random", random=True)
    is_file = paths.is_weights_path(weights)
    item = WeightFile(f"CLIP weights {model} from {weights}" if is_file
                      else f"CLIP weights {model}/{weights}")
    if is_file:
        path = Path(weights).expanduser()
        item.looked_for.append(f"{path} (the clip_weights setting)")
        item.found, item.target = (path if path.is_file() else None), path
        return item
    placed = paths.clip_weights_path(model, weights, cache)
    item.looked_for.append(f"{placed} (a copy put there by hand)")
    hub = paths.clip_hub_folder(model, weights, cache)
    if hub is not None:
        item.looked_for.append(f"{hub.parent}/*/{hub.name} (a download)")
    item.found = paths.local_clip_file(model, weights, cache)
    item.url, item.target = paths.clip_weights_url(model, weights), placed
    return item


def heads_file(heads: str, cache: Path | None) -> WeightFile:
    if heads == RANDOM:
        return WeightFile("heads: random", random=True)
    item = WeightFile(f"heads {heads}")
    if "://" in heads:
        path = paths.cached_path_for_url(heads, cache)
        item.looked_for.append(f"{path} (the download cache for this URL)")
        item.url = heads
    else:
        path = Path(heads).expanduser()
        item.looked_for.append(f"{path} (the heads setting)")
        item.url = DEFAULT_HEADS_URL
    item.found, item.target = (path if path.is_file() else None), path
    return item


def check(item: WeightFile, model: str, sha256: str = "") -> str:
    """The file's size and sha256, after loading it as the node does; sets item.problem when
    it cannot be read or loaded."""
    from ovseg_ros.core import weights as weight_files
    from ovseg_ros.core.dinoiser import check_heads_file

    path = item.found
    try:
        digest = weight_files.file_sha256(path)
    except OSError as exc:
        item.problem = (f"cannot read {path}: {exc.strerror or exc}; fix its permissions or "
                        f"replace it" + (f" with {item.url}" if item.url else ""))
        return ""
    size = f"{path.stat().st_size / MB:.1f} MB, sha256 {digest}"
    try:
        if item.what.startswith("heads"):
            if sha256 and digest != sha256.lower():
                raise weight_files.WeightsError(f"{path} does not match heads_sha256 {sha256}")
            check_heads_file(path, model)
        else:
            weight_files.load_clip(model, str(path))
    except weight_files.WeightsError as exc:
        item.problem = str(exc) if "download" in str(exc) else (
            f"{exc}; delete it and download it again" + (f" from {item.url}" if item.url
                                                         else ""))
    return size


def report(item: WeightFile, model: str, sha256: str = "") -> list[str]:
    lines = [item.what]
    if item.random:
        return lines + ["  random: seeded random weights, nothing to load (labels meaningless)"]
    lines += [f"  looked for: {where}" for where in item.looked_for]
    if item.found is not None:
        size = check(item, model, sha256)
        lines.append(f"  found: {item.found}" + (f" ({size})" if size else ""))
        if item.problem:
            lines.append(f"  BROKEN: {item.problem}")
    elif item.url:
        lines.append(f"  MISSING: download {item.url}")
        lines.append(f"           and put it at {item.target} (online: ovseg weights "
                     "--download)")
    else:
        lines.append(f"  MISSING: {item.target} does not exist; give the path of a file that "
                     "does")
    return lines


def download(item: WeightFile, model: str, weights: str, cache: Path | None,
             sha256: str) -> None:
    """Fetch a missing file into the cache (WeightsError with what to do when it fails)."""
    from ovseg_ros.core import weights as weight_files

    if item.what.startswith("heads"):
        if not item.url or item.target != weight_files.cached_path_for_url(item.url, cache):
            return  # a local path: nothing to download it into
        weight_files.fetch(item.url, cache, sha256 or None, progress=True)
    elif not weight_files.is_weights_path(weights):
        weight_files.download_clip(model, weights, cache)


def run(args: argparse.Namespace) -> int:
    from ovseg_ros.core.errors import WeightsError
    from ovseg_ros.core.tiny import TINY, register_tiny

    if TINY in (args.model, args.keyframe_model):  # the tests' seeded tiny model
        register_tiny()
    cache = Path(args.cache_dir).expanduser() if args.cache_dir else None
    sources = [(args.model, args.clip_weights, "clip"), (args.model, args.heads, "heads")]
    if args.keyframe_model and args.keyframe_model != args.model:
        sources.append((args.keyframe_model, args.keyframe_weights or args.clip_weights,
                        "clip"))

    def items() -> list[tuple[WeightFile, str, str]]:
        return [(clip_file(m, w, cache) if kind == "clip" else heads_file(w, cache), m, w)
                for m, w, kind in sources]

    print(f"ovseg weights: cache {cache or paths.default_cache_dir()}")
    found = items()
    if args.download:
        failed = []
        for item, model, weights in found:
            if item.found is None and not item.random:
                try:
                    download(item, model, weights, cache, args.heads_sha256)
                except WeightsError as exc:
                    failed.append(f"{item.what}: {exc}")
        for line in failed:
            print(f"  download failed: {line}")
        found = items()
    good = True
    for item, model, _ in found:
        for line in report(item, model, args.heads_sha256 if item.what.startswith("heads")
                           else ""):
            print(line)
        good = good and item.ok
    return 0 if good else 1
