"""Where weights files are: the cache folder, hand-placed and hub-downloaded CLIP files, the
heads' download cache and the URLs to fetch them from. Reads no weights and imports no torch,
so `ovseg weights` answers at once when nothing is there to load (loading: weights.py).
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from pathlib import Path

from .config import RANDOM

# open_clip's download sources of the tags this package names in its settings and docs, so
# that finding their files does not import open_clip (and torch); any other tag is looked up
# in open_clip's own registry. test/core/test_weights.py checks these against the registry.
KNOWN_SOURCES: dict[tuple[str, str], dict[str, str]] = {
    ("ViT-B-16", "laion2b_s34b_b88k"): {"url": "",
                                        "hf_hub": "laion/CLIP-ViT-B-16-laion2B-s34B-b88K/"},
    ("ViT-B-32", "laion2b_s34b_b79k"): {"url": "",
                                        "hf_hub": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K/"},
}


def pretrained_source(model_name: str, tag: str) -> dict[str, str]:
    """{'url': ..., 'hf_hub': ...} of an open_clip pretrained tag ({} for an unknown one)."""
    known = KNOWN_SOURCES.get((model_name, tag))
    if known is not None:
        return dict(known)
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, tag) or {}
    return {k: cfg[k] for k in ("url", "hf_hub") if k in cfg}


def default_cache_dir() -> Path:
    """$OVSEG_CACHE, else $XDG_CACHE_HOME/ovseg_ros, else ~/.cache/ovseg_ros."""
    if os.environ.get("OVSEG_CACHE"):
        return Path(os.environ["OVSEG_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ovseg_ros"


def clip_weights_url(model_name: str, tag: str) -> str:
    """Where the open_clip weights for (model_name, tag) can be downloaded by hand."""
    cfg = pretrained_source(model_name, tag)
    if cfg.get("hf_hub"):
        repo = cfg["hf_hub"].rstrip("/")
        return f"https://huggingface.co/{repo}/resolve/main/open_clip_pytorch_model.bin"
    return cfg.get("url", "")


def clip_hub_folder(model_name: str, tag: str, cache_dir: Path | None = None) -> Path | None:
    """<cache>/clip/models--<org>--<repo>/snapshots/<file name>: where a hub download of the
    tag's weights lands (Hugging Face layout, one folder per revision between the two), or
    None for a tag not on the hub."""
    hub = pretrained_source(model_name, tag).get("hf_hub", "")
    if not hub:
        return None
    model_id, filename = os.path.split(hub)  # "org/repo/" means the default file name
    return (Path(cache_dir or default_cache_dir()) / "clip" /
            ("models--" + model_id.replace("/", "--")) / "snapshots" /
            (filename or "open_clip_pytorch_model.bin"))


def hub_cached_file(model_name: str, tag: str, cache_dir: Path | None = None) -> Path | None:
    """The weights file an earlier hub download left in our cache (Hugging Face layout)."""
    pattern = clip_hub_folder(model_name, tag, cache_dir)
    if pattern is None:
        return None
    found = sorted(pattern.parent.glob(f"*/{pattern.name}"))
    return found[-1] if found else None


def is_weights_path(weights: str) -> bool:
    """Whether a CLIP weights source names a file (rather than a pretrained tag)."""
    path = Path(weights).expanduser()
    return bool(path.suffix) or os.sep in weights or path.exists()


def local_clip_file(model_name: str, weights: str, cache_dir: Path | None = None
                    ) -> Path | None:
    """The file `load_clip` reads for `weights` when it is on this machine (a path, a file put
    in the cache by hand, or an earlier hub download); None for random weights or a tag not
    downloaded yet. Downloads nothing."""
    if weights in ("", RANDOM):
        return None
    if is_weights_path(weights):
        path = Path(weights).expanduser()
        return path if path.is_file() else None
    placed = clip_weights_path(model_name, weights, cache_dir)
    return placed if placed.is_file() else hub_cached_file(model_name, weights, cache_dir)


def clip_weights_path(model_name: str, tag: str, cache_dir: Path | None = None) -> Path:
    """Where a hand-placed weights file for (model_name, tag) is looked for before the hub."""
    return Path(cache_dir or default_cache_dir()) / "clip" / f"{model_name}_{tag}.bin"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached_path_for_url(url: str, cache_dir: Path | None = None) -> Path:
    """Where a downloaded URL is kept: one file per URL, named after it."""
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    key = hashlib.sha1(url.encode()).hexdigest()[:12]
    return Path(cache_dir or default_cache_dir()) / "heads" / f"{key}-{name}"
