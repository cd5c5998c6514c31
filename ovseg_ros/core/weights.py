"""Loading CLIP weights and CLIP-DINOiser head checkpoints: local files, tags, URLs, a cache.

Every failure becomes a `WeightsError` whose message says what is wrong and what to do, so a
node or command line can print one line instead of a traceback.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import open_clip
import torch

from .config import DEFAULT_HEADS_URL, RANDOM
from .errors import WeightsError
from .weight_paths import (
    cached_path_for_url,
    clip_weights_path,
    clip_weights_url,
    default_cache_dir,
    file_sha256,
    hub_cached_file,
    is_weights_path,
    local_clip_file,
)

log = logging.getLogger(__name__)

# How to point each front end at a local file, for the error messages.
CLIP_WEIGHTS_HINT = ("set clip_weights to the file's path (ROS parameter or launch argument "
                     "clip_weights:=PATH, CLI --clip-weights PATH)")
HEADS_HINT = "set heads to its path (heads:=PATH in ROS, --heads PATH in the CLI)"


def _is_url(source: str) -> bool:
    return "://" in source


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host opens within `timeout`.

    Without this, an offline robot waits about 50 s in the hub client's retries before the
    error. True when a proxy or offline mode is configured: the hub client knows better then.
    """
    proxied = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HF_HUB_OFFLINE")
    if any(os.environ.get(k) for k in proxied):
        return True
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        return True
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def load_clip(
    model_name: str, weights: str, cache_dir: Path | None = None, seed: int = 0
) -> torch.nn.Module:
    """Build an open_clip CLIP model with `weights`: a pretrained tag, a local file or "random".

    Returns the model in eval mode, fp32, on the CPU; the caller moves it.
    """
    if model_name not in open_clip.list_models():
        raise WeightsError(f"unknown open_clip model {model_name!r}")
    if weights in ("", RANDOM):
        torch.manual_seed(seed)
        return open_clip.create_model(model_name, pretrained=None).eval()
    path = Path(weights).expanduser()
    if is_weights_path(weights):
        if not path.is_file():
            raise WeightsError(f"CLIP weights file not found: {path}")
        try:
            return open_clip.create_model(model_name, pretrained=str(path)).eval()
        except Exception as exc:  # open_clip raises many types for a bad file
            raise WeightsError(
                f"CLIP weights file {path} could not be loaded into {model_name}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from exc
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if weights not in tags:
        raise WeightsError(
            f"{weights!r} is neither a file nor a pretrained tag of {model_name} "
            f"(tags: {', '.join(tags) or 'none'})"
        )
    cache = Path(cache_dir or default_cache_dir()) / "clip"
    placed = clip_weights_path(model_name, weights, cache_dir)
    local = local_clip_file(model_name, weights, cache_dir)
    if local is not None:  # placed by hand (wins over the hub) or fetched before: no network
        return load_clip(model_name, str(local))
    url = clip_weights_url(model_name, weights)
    offline = (f"Without network: download {url} on a machine that has it and put it at "
               f"{placed}, or " + CLIP_WEIGHTS_HINT + ".")
    probe = os.environ.get("HF_ENDPOINT", "") if "huggingface.co" in url else ""
    if url and not reachable(probe or url):
        raise WeightsError(f"could not get CLIP weights {model_name}/{weights}: "
                           f"{urllib.parse.urlsplit(probe or url).hostname} is unreachable. "
                           + offline)
    try:
        return open_clip.create_model(model_name, pretrained=weights, cache_dir=str(cache)).eval()
    except Exception as exc:  # network errors surface as many exception types
        raise WeightsError(
            f"could not get CLIP weights {model_name}/{weights} ({type(exc).__name__}). "
            + offline) from exc


def fetch(url: str, cache_dir: Path | None = None, sha256: str | None = None,
          progress: bool = False) -> Path:
    """Return the cached copy of `url`, downloading it once (https only, atomic rename);
    `progress`: a progress bar on stderr while it downloads."""
    if urllib.parse.urlparse(url).scheme != "https":
        raise WeightsError(f"refusing to download {url!r}: only https URLs are allowed")
    target = cached_path_for_url(url, cache_dir)
    if not target.is_file():
        from tqdm import tqdm

        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as resp, \
                    tqdm(total=int(resp.headers.get("Content-Length") or 0) or None,
                         unit="B", unit_scale=True, desc=target.name,
                         disable=not progress) as bar:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
            os.replace(tmp, target)
        except Exception as exc:
            Path(tmp).unlink(missing_ok=True)
            raise WeightsError(
                f"could not download {url} ({type(exc).__name__}: {exc}). Without network, "
                f"download it elsewhere and put it at {target}, or {HEADS_HINT}."
            ) from exc
        log.info("downloaded %s to %s", url, target)
    if sha256 and file_sha256(target) != sha256.lower():
        raise WeightsError(f"{target} does not match the expected sha256 {sha256}")
    return target


def resolve_checkpoint(
    source: str, cache_dir: Path | None = None, sha256: str | None = None
) -> Path:
    """A head checkpoint source (local path or https URL) as a local file path."""
    if _is_url(source):
        return fetch(source, cache_dir, sha256)
    path = Path(source).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"head checkpoint not found: {path}. Download {DEFAULT_HEADS_URL} and {HEADS_HINT}."
        )
    if sha256 and file_sha256(path) != sha256.lower():
        raise WeightsError(f"{path} does not match the expected sha256 {sha256}")
    return path


def load_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    """Read a published-format checkpoint: {'model_state_dict': {name: tensor}, ...}."""
    try:
        # weights_only: a checkpoint is data, never code to run.
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"head checkpoint {path} is corrupt or not a torch file "
                           f"({_load_reason(exc)}); download it again ({DEFAULT_HEADS_URL}) "
                           f"or {HEADS_HINT}") from exc
    if not isinstance(blob, Mapping) or not isinstance(blob.get("model_state_dict"), Mapping):
        raise WeightsError(
            f"head checkpoint {path} has no 'model_state_dict' mapping "
            "(expected the published format {'epoch': int, 'model_state_dict': {...}})"
        )
    return blob["model_state_dict"]


def _load_reason(exc: Exception) -> str:
    """torch.load's reason in a few words: its weights-only refusal runs over many lines and
    suggests loading the file as code, which a checkpoint never needs."""
    text = str(exc)
    found = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|$)", text, re.S)
    if found:
        return found.group(1).strip()
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def check_state_dict(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], source: str
) -> None:
    """Raise WeightsError naming every missing or extra key and every wrong shape."""
    problems = [f"missing key {k}" for k in expected if k not in state]
    problems += [f"unexpected key {k}" for k in state if k not in expected]
    for key, shape in expected.items():
        value = state.get(key)
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            problems.append(f"{key} is not a tensor")
        elif tuple(value.shape) != tuple(shape):
            problems.append(f"{key} has shape {list(value.shape)}, expected {list(shape)}")
        elif not torch.isfinite(value).all():
            problems.append(f"{key} contains NaN or Inf")
    if problems:
        raise WeightsError(
            f"head checkpoint {source} does not fit this model: " + "; ".join(problems)
        )


def probe_weights(model_name: str, clip_weights: str, heads: str,
                  cache_dir: Path | None = None) -> str | None:
    """None when both weight sources can be had (downloading what is missing into the cache),
    else the reason they cannot. Builds no model, so it is cheap when everything is cached."""
    try:
        if heads != RANDOM:
            resolve_checkpoint(heads, cache_dir)
        if clip_weights in ("", RANDOM) or Path(clip_weights).expanduser().is_file():
            return None
        if clip_weights_path(model_name, clip_weights, cache_dir).is_file():
            return None
        if hub_cached_file(model_name, clip_weights, cache_dir) is not None:
            return None
        download_clip(model_name, clip_weights, cache_dir)
    except WeightsError as exc:
        return str(exc)
    return None


def download_clip(model_name: str, tag: str, cache_dir: Path | None = None) -> Path:
    """Download the open_clip weights of a pretrained tag into the cache, where `load_clip`
    finds them (the hub client shows its progress bar); the file. WeightsError with what to
    download by hand, and where to put it, when that fails."""
    url = clip_weights_url(model_name, tag)
    by_hand = (f"download {url} and put it at {clip_weights_path(model_name, tag, cache_dir)}, "
               "or " + CLIP_WEIGHTS_HINT)
    if url and not reachable(os.environ.get("HF_ENDPOINT", "") or url):
        raise WeightsError(f"could not get CLIP weights {model_name}/{tag}: no network; "
                           + by_hand)
    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not cfg:
        raise WeightsError(f"{tag!r} is not a pretrained tag of {model_name}")
    cache = Path(cache_dir or default_cache_dir()) / "clip"
    try:
        return Path(open_clip.pretrained.download_pretrained(cfg, cache_dir=str(cache)))
    except Exception as exc:
        raise WeightsError(f"could not get CLIP weights {model_name}/{tag} "
                           f"({type(exc).__name__}); " + by_hand) from exc
