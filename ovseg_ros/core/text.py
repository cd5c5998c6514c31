"""Class-name text embeddings from prompt templates, cached per class name."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from torch import nn

from .device import Runtime

# Plain format strings, so they can be filled and tokenised without calling lambdas each time.
IMAGENET_TEMPLATES: tuple[str, ...] = tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)


class TextEncoder(nn.Module):
    """CLIP's text tower, trimmed to the longest prompt in the batch.

    The text transformer is causal and pools at the end-of-text token, so tokens after the last
    EOT in a batch never affect the result: cutting the 77-token context there is exact and
    several times cheaper for short class names.
    """

    def __init__(self, clip: nn.Module):
        super().__init__()
        self.clip = clip
        needed = ("token_embedding", "positional_embedding", "transformer", "ln_final",
                  "text_projection")
        self.trimmable = all(hasattr(clip, n) for n in needed) and (
            getattr(clip, "text_pool_type", "argmax") == "argmax"
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, 77) token ids -> (N, D) unnormalised text features."""
        if not self.trimmable:
            return self.clip.encode_text(tokens)
        clip = self.clip
        eot = tokens.argmax(dim=-1)
        length = int(eot.max()) + 1
        dtype = clip.transformer.get_cast_dtype()
        x = clip.token_embedding(tokens[:, :length]).to(dtype)
        x = x + clip.positional_embedding[:length].to(dtype)
        mask = clip.attn_mask[:length, :length] if clip.attn_mask is not None else None
        x = clip.ln_final(clip.transformer(x, attn_mask=mask))
        x = x[torch.arange(x.shape[0], device=x.device), eot]
        proj = clip.text_projection
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj


class TextEmbeddingCache:
    """Class name -> unit-norm embedding (D,), averaged over templates, computed once per name.

    The cache is keyed by name only: one cache belongs to one model and one set of templates.
    Thread-safe, so a service callback can fill it while a worker thread reads from it.
    """

    def __init__(
        self,
        clip: nn.Module,
        tokenizer: Callable[[list[str]], torch.Tensor],
        runtime: Runtime,
        templates: Sequence[str] = IMAGENET_TEMPLATES,
        batch_size: int = 256,
        max_entries: int = 4096,
    ):
        self.encoder = TextEncoder(clip)
        self.tokenizer = tokenizer
        self.runtime = runtime
        self.templates = tuple(templates)
        self.batch_size = batch_size
        self.max_entries = max_entries
        self._cache: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()
        self.encoded_names = 0  # how many names were actually run through the text tower

    def __contains__(self, name: str) -> bool:
        return name in self._cache

    def _encode(self, names: list[str]) -> torch.Tensor:
        """Template-averaged embeddings (N, D) float32 for `names`."""
        prompts = [t.format(name) for name in names for t in self.templates]
        tokens = self.tokenizer(prompts).to(self.runtime.device)
        # Similar lengths per batch keep the trimmed context short for most batches.
        order = torch.argsort(tokens.argmax(dim=-1))
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(prompts), self.batch_size):
                idx = order[start:start + self.batch_size]
                chunks.append((idx, F.normalize(self.encoder(tokens[idx]).float(), dim=-1)))
        feats = torch.empty(len(prompts), chunks[0][1].shape[-1], device=self.runtime.device)
        for idx, chunk in chunks:
            feats[idx] = chunk
        mean = feats.view(len(names), len(self.templates), -1).mean(dim=1)
        return F.normalize(mean, dim=-1)

    def embed(self, names: Sequence[str]) -> torch.Tensor:
        """(N, D) float32 embeddings on the runtime device; encodes only names not cached."""
        with self._lock:
            missing = list(dict.fromkeys(n for n in names if n not in self._cache))
            if missing:
                for name, emb in zip(missing, self._encode(missing), strict=True):
                    self._cache[name] = emb
                self.encoded_names += len(missing)
                self._evict(keep=set(names))
            if not names:
                return torch.empty(0, 0, device=self.runtime.device)
            return torch.stack([self._cache[n] for n in names])

    def _evict(self, keep: set[str]) -> None:
        """Drop the oldest names beyond max_entries, never one in `keep`: memory stays bounded
        under endless vocabulary churn."""
        excess = len(self._cache) - self.max_entries
        for name in [n for n in self._cache if n not in keep][:max(excess, 0)]:
            del self._cache[name]
