"""Checkpoint validation, loading paths and the offline errors."""

from __future__ import annotations

import socket

import pytest
import torch
from helpers.tiny_models import (
    TINY_WIDTH,
    random_head_state,
    tiny_files,
    tiny_segmenter,
    write_heads,
)

from ovseg_ros.core import WeightsError
from ovseg_ros.core import weights as W
from ovseg_ros.core.dinoiser import DinoiserHeads


def test_published_format_loads_exactly(tmp_path):
    state = random_head_state()
    seg = tiny_segmenter(tmp_path, heads=str(write_heads(tmp_path / "h.pt", state=state)))
    for key, value in state.items():
        assert torch.equal(seg.heads.state_dict()[key], value)


@pytest.mark.parametrize("mutate,expected", [
    (lambda s: s.pop("obj_proj.bias"), "missing key obj_proj.bias"),
    (lambda s: s.__setitem__("extra.weight", torch.zeros(1)), "unexpected key extra.weight"),
    (lambda s: s.__setitem__("bkg_decoder.weight", torch.zeros(1, 32, 1, 1)),
     "bkg_decoder.weight has shape [1, 32, 1, 1], expected [1, 64, 1, 1]"),
    (lambda s: s.__setitem__("bkg_decoder.bias", torch.tensor([float("nan")])), "NaN"),
])
def test_checkpoint_problems_are_named(mutate, expected):
    state = random_head_state()
    mutate(state)
    with pytest.raises(WeightsError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        DinoiserHeads(TINY_WIDTH).load_published(state)


def test_wrong_model_width_checkpoint(tmp_path):
    path = write_heads(tmp_path / "h768.pt", width=768)
    with pytest.raises(WeightsError, match="expected"):
        tiny_segmenter(tmp_path, heads=str(path))


def test_corrupt_and_wrong_format_checkpoints(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(WeightsError, match="corrupt"):
        W.load_state_dict(corrupt)
    bare = tmp_path / "bare.pt"
    torch.save(random_head_state(), bare)
    with pytest.raises(WeightsError, match="model_state_dict"):
        W.load_state_dict(bare)


def test_checkpoint_with_code_is_refused(tmp_path):
    """weights_only loading: an arbitrary pickled object is an error, not executed."""
    evil = tmp_path / "evil.pt"
    torch.save({"model_state_dict": {"x": socket.socket}}, evil)
    with pytest.raises(WeightsError):
        W.load_state_dict(evil)


def test_missing_checkpoint_says_what_to_download(tmp_path):
    with pytest.raises(WeightsError, match="clip_dinoiser"):
        tiny_segmenter(tmp_path, heads=str(tmp_path / "nope.pt"))


def test_http_refused_and_offline_download_error(tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match="https"):
        W.fetch("http://example.com/last.pt", tmp_path)

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(W.urllib.request, "urlopen", offline)
    url = "https://example.com/checkpoints/last.pt"
    with pytest.raises(WeightsError) as err:
        W.fetch(url, tmp_path)
    assert str(W.cached_path_for_url(url, tmp_path)) in str(err.value)
    assert not list((tmp_path / "heads").glob(".part-*"))  # no partial file left behind


def test_url_download_cached_once_and_hash_checked(tmp_path, https_folder):
    """Over a real HTTPS server on 127.0.0.1: downloaded once, then read from the cache."""
    payload = write_heads(https_folder.root / "last.pt")
    url = f"{https_folder.url}/last.pt"
    first = W.fetch(url, tmp_path)
    second = W.fetch(url, tmp_path, progress=True)
    assert first == second and https_folder.requests == ["/last.pt"]
    assert first.read_bytes() == payload.read_bytes()
    digest = W.file_sha256(payload)
    assert W.fetch(url, tmp_path, sha256=digest) == first
    with pytest.raises(WeightsError, match="sha256"):
        W.fetch(url, tmp_path, sha256="0" * 64)
    with pytest.raises(WeightsError, match="put it at"):  # 404: the message says what to do
        W.fetch(f"{https_folder.url}/missing.pt", tmp_path)


def test_clip_weights_errors(tmp_path):
    name, _, _ = tiny_files(tmp_path)
    with pytest.raises(WeightsError, match="not found"):
        W.load_clip(name, str(tmp_path / "missing.bin"))
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="could not be loaded"):
        W.load_clip(name, str(bad))
    with pytest.raises(WeightsError, match="neither a file nor a pretrained tag"):
        W.load_clip("ViT-B-16", "no_such_tag")
    with pytest.raises(WeightsError, match="unknown open_clip model"):
        W.load_clip("ViT-Nope", "random")


def test_clip_tag_offline_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(W.open_clip, "create_model", no_network)
    with pytest.raises(WeightsError) as err:
        W.load_clip("ViT-B-16", "laion2b_s34b_b88k", tmp_path)
    msg = str(err.value)
    placed = W.clip_weights_path("ViT-B-16", "laion2b_s34b_b88k", tmp_path)
    assert "huggingface.co/laion/CLIP-ViT-B-16-laion2B-s34B-b88K" in msg and str(placed) in msg


def test_hand_placed_clip_weights_are_used_offline(tmp_path, monkeypatch):
    """A file put where the offline error says is loaded without touching the hub."""
    name, clip, _ = tiny_files(tmp_path)
    monkeypatch.setattr(W.open_clip, "list_pretrained_tags_by_model", lambda m: ["mytag"])
    placed = W.clip_weights_path(name, "mytag", tmp_path)
    placed.parent.mkdir(parents=True, exist_ok=True)
    placed.write_bytes(clip.read_bytes())
    model = W.load_clip(name, "mytag", tmp_path)
    want = torch.load(clip, weights_only=True)
    assert torch.equal(model.state_dict()["visual.proj"], want["visual.proj"])


def test_probe_weights(tmp_path, monkeypatch):
    name, clip, heads = tiny_files(tmp_path)
    assert W.probe_weights(name, str(clip), str(heads)) is None
    assert W.probe_weights(name, "random", "random") is None
    assert "not found" in W.probe_weights(name, str(clip), str(tmp_path / "nope.pt"))

    def offline(*a, **k):
        raise OSError("offline")

    monkeypatch.setattr(W.open_clip.pretrained, "download_pretrained", offline)
    msg = W.probe_weights("ViT-B-16", "laion2b_s34b_b88k", str(heads), tmp_path)
    assert str(W.clip_weights_path("ViT-B-16", "laion2b_s34b_b88k", tmp_path)) in msg


@pytest.fixture
def no_route(monkeypatch):
    """The hub endpoint points at a closed local port: a machine without network."""
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")


def test_unreachable_hub_fails_at_once_with_the_offline_instructions(tmp_path, no_route):
    assert not W.reachable("https://127.0.0.1:9")
    with pytest.raises(WeightsError) as err:
        W.load_clip("ViT-B-16", "laion2b_s34b_b88k", tmp_path)
    msg = str(err.value)
    placed = W.clip_weights_path("ViT-B-16", "laion2b_s34b_b88k", tmp_path)
    assert "127.0.0.1 is unreachable" in msg and str(placed) in msg
    assert "huggingface.co/laion/CLIP-ViT-B-16-laion2B-s34B-b88K" in msg
    _, _, heads = tiny_files(tmp_path)
    probe = W.probe_weights("ViT-B-16", "laion2b_s34b_b88k", str(heads), tmp_path)
    assert "no network" in probe and str(placed) in probe


def test_earlier_hub_download_is_used_without_network(tmp_path, monkeypatch, no_route):
    name, clip, heads = tiny_files(tmp_path)
    monkeypatch.setattr(W.open_clip, "list_pretrained_tags_by_model", lambda m: ["hubtag"])
    monkeypatch.setattr(W.open_clip, "get_pretrained_cfg",
                        lambda m, t: {"hf_hub": "someorg/tiny-clip/"} if t == "hubtag" else {})
    snap = tmp_path / "clip" / "models--someorg--tiny-clip" / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (snap / "open_clip_pytorch_model.bin").write_bytes(clip.read_bytes())
    assert W.hub_cached_file(name, "hubtag", tmp_path) == snap / "open_clip_pytorch_model.bin"
    model = W.load_clip(name, "hubtag", tmp_path)
    want = torch.load(clip, weights_only=True)
    assert torch.equal(model.state_dict()["visual.proj"], want["visual.proj"])
    assert W.probe_weights(name, "hubtag", str(heads), tmp_path) is None


def test_known_sources_are_open_clips_own():
    """The tags whose download sources weight_paths knows without open_clip name the same
    sources as open_clip's registry (a new open_clip release that moves them fails here)."""
    from ovseg_ros.core.weight_paths import KNOWN_SOURCES

    for (model, tag), source in KNOWN_SOURCES.items():
        cfg = W.open_clip.get_pretrained_cfg(model, tag)
        assert cfg, f"{model}/{tag} is not in open_clip's registry"
        assert {k: cfg.get(k, "") for k in source} == source, (model, tag)
