"""Class-name text embeddings from prompt templates, cached per class name."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from torch import nn

from .device import Runtime
from .reproducible import one_thread
from .text_store import TextEmbeddingStore, store_key

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


class PrefixTextEncoder(nn.Module):
    """The text tower with each template's prefix (the tokens before the class name) computed
    once: per class name only the name, the rest of the template and the end token run.

    The tower is causal, so a prefix's keys and values in every block do not depend on what
    follows; BPE splits at spaces, so a template's prefix tokens are the same for any name
    (checked per prompt; a prompt that does not start with its prefix runs in full). About a
    third of the tokens of the 80 ImageNet templates remain (about 2.5x less work).
    """

    def __init__(self, full: TextEncoder, tokenizer: Callable[[list[str]], torch.Tensor],
                 templates: Sequence[str]):
        super().__init__()
        self.full = full
        clip = full.clip
        blocks = clip.transformer.resblocks
        self.usable = full.trimmable and all(
            isinstance(getattr(b, "attn", None), nn.MultiheadAttention)
            and not hasattr(b, "ln_1_kv") for b in blocks)
        prefixes = tokenizer([t.split("{}")[0].rstrip() for t in templates])
        self.prefix_len = prefixes.argmax(dim=-1)  # tokens before the end token (SOT included)
        self.prefix_tokens = prefixes
        self._kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def _block(self, block: nn.Module, x: torch.Tensor, valid: torch.Tensor, mask: torch.Tensor,
               past: tuple[torch.Tensor, torch.Tensor] | None
               ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One residual block. x: the real tokens packed (T, W), so the linear layers (nearly
        all the work) never run on padding; valid (N, L) says where they sit in the padded
        (N, L) layout that attention uses, with optional past keys/values (N, H, P, W / H) in
        front; mask (N, 1, L, P + L) additive. Returns x and this chunk's padded keys/values."""
        attn: nn.MultiheadAttention = block.attn
        (n, length), width, heads = valid.shape, x.shape[-1], attn.num_heads
        qkv = x.new_zeros(n, length, 3 * width)
        qkv[valid] = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias)
        q, k, v = qkv.view(n, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
        keys, values = (torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)) if past else (k, v)
        scores = (q * (width // heads) ** -0.5) @ keys.transpose(-1, -2) + mask
        out = (torch.softmax(scores, dim=-1) @ values).transpose(1, 2).reshape(n, length, width)
        x = x + block.ls_1(attn.out_proj(out[valid]))
        return x + block.ls_2(block.mlp(block.ln_2(x))), (k, v)

    def _prefix_kv(self, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per block, the prefixes' keys and values (T, H, Pmax, W / H); computed once."""
        if self._kv is None:
            clip = self.full.clip
            dtype = clip.transformer.get_cast_dtype()
            length = int(self.prefix_len.max())
            tokens = self.prefix_tokens[:, :length].to(device)
            valid = torch.arange(length, device=device)[None] < self.prefix_len.to(device)[:, None]
            x = clip.token_embedding(tokens) + clip.positional_embedding[:length]
            x = x.to(dtype)
            causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
            mask = _additive(causal, dtype)[None, None]
            x = x[valid]
            kv = []
            for block in clip.transformer.resblocks:
                x, pair = self._block(block, x, valid, mask, None)
                kv.append(pair)
            self._kv = kv
        return self._kv

    def forward(self, tokens: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
        """tokens (N, 77) of prompts whose template index is `template` (N,) -> (N, D).

        Prompts must start with their template's prefix (see `starts_with_prefix`)."""
        clip = self.full.clip
        dev = tokens.device
        dtype = clip.transformer.get_cast_dtype()
        kv = self._prefix_kv(dev)
        plen = self.prefix_len.to(dev)[template]  # (N,)
        pmax = kv[0][0].shape[2]
        slen = tokens.argmax(dim=-1) - plen + 1  # suffix tokens, end token included
        n, smax = len(tokens), int(slen.max())
        offsets = torch.arange(smax, device=dev)
        valid = offsets[None] < slen[:, None]  # (N, S)
        pos = (plen[:, None] + offsets).clamp(max=tokens.shape[1] - 1)  # (N, S)
        x = clip.token_embedding(tokens.gather(1, pos)) + clip.positional_embedding[pos]
        x = x.to(dtype)[valid]
        in_prefix = torch.arange(pmax, device=dev)[None, None] < plen[:, None, None]
        causal = offsets[None, :, None] >= offsets[None, None, :]
        seen = torch.cat([in_prefix.expand(n, smax, pmax), causal.expand(n, smax, smax)], dim=2)
        mask = _additive(seen, dtype)[:, None]
        for block, (k, v) in zip(clip.transformer.resblocks, kv, strict=True):
            x, _ = self._block(block, x, valid, mask, (k[template], v[template]))
        x = clip.ln_final(x[slen.cumsum(0) - 1])  # each prompt's end token, packed row-major
        proj = clip.text_projection
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj

    def starts_with_prefix(self, tokens: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
        """(N,) bool: prompt i begins with its template's prefix tokens."""
        prefix = self.prefix_tokens.to(tokens.device)[template]
        plen = self.prefix_len.to(tokens.device)[template]
        inside = torch.arange(prefix.shape[1], device=tokens.device)[None] < plen[:, None]
        return ((prefix == tokens[:, :prefix.shape[1]]) | ~inside).all(dim=1)


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean "may attend" -> additive mask (0 or the dtype's lowest value)."""
    zero = torch.zeros((), dtype=dtype, device=allowed.device)
    return torch.where(allowed, zero, torch.finfo(dtype).min)


class TextEmbeddingCache:
    """Class name -> unit-norm embedding (D,), averaged over templates, computed once per name.

    The cache is keyed by name only: one cache belongs to one model and one set of templates.
    With `store_folder`, names are also kept on disk (text_store.TextEmbeddingStore, keyed by
    model, text weights, templates, dtype and versions): a name encoded by any earlier process
    is read back instead of encoded.

    Thread-safe: the dictionary's lock is held only for lookups and inserts, never while the
    text tower runs, so a reader of cached names never waits for an encoding; encodings run
    one at a time (a second caller with new names waits for the first, then finds its names).
    """

    def __init__(
        self,
        clip: nn.Module,
        tokenizer: Callable[[list[str]], torch.Tensor],
        runtime: Runtime,
        templates: Sequence[str] = IMAGENET_TEMPLATES,
        batch_size: int = 256,
        max_entries: int = 4096,
        store_folder: Path | None = None,
        model: str = "",
    ):
        self.encoder = TextEncoder(clip)
        self.prefix_encoder = PrefixTextEncoder(self.encoder, tokenizer, templates)
        self.reuse_prefixes = self.prefix_encoder.usable  # False: every prompt runs in full
        self.tokenizer = tokenizer
        self.runtime = runtime
        self.templates = tuple(templates)
        self.batch_size = batch_size
        self.max_entries = max_entries
        self.store_folder = store_folder
        self.model = model
        self._stores: dict[str, TextEmbeddingStore] = {}
        self._cache: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()  # the dictionary
        self._encoding = threading.Lock()  # one text-tower run at a time
        self.encoded_names = 0  # how many names were actually run through the text tower
        self.loaded_names = 0  # how many were read from the disk store

    def __contains__(self, name: str) -> bool:
        return name in self._cache

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the text tower runs in."""
        return self.encoder.clip.transformer.get_cast_dtype()

    @property
    def store(self) -> TextEmbeddingStore | None:
        """The disk store of the current encoder path (its key hashes the text weights, so it
        is made on first use), or None without a store folder."""
        if self.store_folder is None:
            return None
        path = "prefix" if self.reuse_prefixes else "full"
        with self._lock:
            store = self._stores.get(path)
        if store is None:
            key = store_key(self.model, self.encoder.clip, self.templates, self.runtime.device,
                            self.dtype, path)
            store = TextEmbeddingStore(self.store_folder, key)
            store.write_key()
            with self._lock:
                store = self._stores.setdefault(path, store)
        return store

    def missing(self, names: Sequence[str]) -> list[str]:
        """The names (unique, in order) whose embedding is not in memory."""
        with self._lock:
            return list(dict.fromkeys(n for n in names if n not in self._cache))

    def load(self, names: Sequence[str]) -> list[str]:
        """Read what the disk store holds of `names` into memory (a file read each, no
        encoding); returns the names still missing, which need the text tower."""
        missing = self.missing(names)
        store = self.store if missing else None
        if store is None:
            return missing
        found = store.load(missing)
        if found:
            with self._lock:
                for name, emb in found.items():
                    self._cache.setdefault(name, emb.to(self.runtime.device))
                self.loaded_names += len(found)
        return [n for n in missing if n not in found]

    def _encode(self, names: list[str]) -> torch.Tensor:
        """Template-averaged embeddings (N, D) float32 for `names`.

        Each name runs alone (its own batches, shapes decided by the name only) on one thread:
        a name's bits then never depend on which names were encoded with it, on the thread
        count or on the machine's load (reproducible.py), so an embedding read from the disk
        store equals one encoded here."""
        with one_thread():
            return torch.cat([self.encode_together([name]) for name in names])

    def encode_together(self, names: Sequence[str]) -> torch.Tensor:
        """(N, D) float32 for `names` in shared batches, on the calling thread's threads: the
        bits of one name then depend on the others and on the thread count. For `_encode` (one
        name at a time) and the benchmark that measures what that costs."""
        prompts = [t.format(name) for name in names for t in self.templates]
        tokens = self.tokenizer(prompts).to(self.runtime.device)
        template = torch.arange(len(self.templates), device=tokens.device).repeat(len(names))
        feats: torch.Tensor | None = None
        with torch.inference_mode():
            prefixed = torch.zeros(len(prompts), dtype=torch.bool, device=tokens.device)
            if self.reuse_prefixes:
                prefixed = self.prefix_encoder.starts_with_prefix(tokens, template)
            # Similar lengths per batch keep the padded length short for most batches.
            eot = tokens.argmax(dim=-1)
            suffix = eot - self.prefix_encoder.prefix_len.to(tokens.device)[template]
            for use_prefix, length in ((True, suffix), (False, eot)):
                rows = (prefixed == use_prefix).nonzero()[:, 0]
                rows = rows[torch.argsort(length[rows])]
                for idx in rows.split(self.batch_size) if len(rows) else ():
                    out = (self.prefix_encoder(tokens[idx], template[idx]) if use_prefix
                           else self.encoder(tokens[idx]))
                    out = F.normalize(out.float(), dim=-1)
                    if feats is None:
                        feats = out.new_empty(len(prompts), out.shape[-1])
                    feats[idx] = out
        assert feats is not None
        mean = feats.view(len(names), len(self.templates), -1).mean(dim=1)
        return F.normalize(mean, dim=-1)

    def embed(self, names: Sequence[str]) -> torch.Tensor:
        """(N, D) float32 embeddings on the runtime device; reads from the disk store or
        encodes only the names not in memory."""
        while True:
            fresh: dict[str, torch.Tensor] = {}
            if self.missing(names):
                with self._encoding:
                    todo = self.load(names)  # also picks up what another caller just encoded
                    if todo:
                        emb = self._encode(todo)
                        fresh = dict(zip(todo, emb, strict=True))
                        with self._lock:
                            self._cache.update(fresh)
                            self.encoded_names += len(todo)
                        store = self.store
                        if store is not None:
                            store.save(todo, emb)
            with self._lock:
                if not names:
                    return torch.empty(0, 0, device=self.runtime.device)
                # `fresh` covers a name evicted meanwhile by another caller's insert; a name
                # found then evicted before this point is looked up once more.
                if all(n in self._cache or n in fresh for n in names):
                    out = torch.stack([self._cache[n] if n in self._cache else fresh[n]
                                       for n in names])
                    self._evict(keep=set(names))
                    return out

    def _evict(self, keep: set[str]) -> None:
        """Drop the oldest names beyond max_entries, never one in `keep`: memory stays bounded
        under endless vocabulary churn. Call with the lock held."""
        excess = len(self._cache) - self.max_entries
        for name in [n for n in self._cache if n not in keep][:max(excess, 0)]:
            del self._cache[name]
