"""Arithmetic whose bits do not depend on PyTorch's thread count.

The `threads` setting must change speed only, never an output's bits (a bag resumed or run on a
Ray worker with another thread count writes the same bytes). Four CPU mechanisms break that,
and each has its rule here; test/core/test_thread_invariance.py runs every output at several
thread counts.

- Matrix products: Intel MKL (PyTorch's fp32 products on x86) splits a product among threads
  in ways that round differently per thread count. Its strict reproducibility mode
  (MKL_CBWR=AUTO,STRICT, chosen in the package's __init__ before torch loads) fixes that for
  products with at least 64 rows or 100 columns; smaller ones take a path that ignores it, so
  they run on one thread (`product`, `one_thread`): they are cheap.
- Softmax and logsumexp over a middle dimension (below).
- Resampling (F.interpolate): on one thread (resample.py).
- Fused attention for a single query: never used (maskclip.GlobalClipEncoder).

PyTorch's CPU softmax and logsumexp over a dimension that is not the last one split the other
elements among the threads, and compute each split's ragged edge in scalar code, whose exp
rounds differently from the vectorised one: the same input then gives other bits with another
`threads` setting. Over the last dimension each row is one thread's work, computed the same way
at any thread count. These helpers move the class dimension last, reduce, and move it back (the
result is a permuted view; nothing is copied back).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch


def class_softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """torch.softmax(x, dim), with the same bits at any thread count; same shape as x."""
    return torch.softmax(x.movedim(dim, -1), dim=-1).movedim(-1, dim)


def class_logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """torch.logsumexp(x, dim, keepdim=True), with the same bits at any thread count."""
    return torch.logsumexp(x.movedim(dim, -1), dim=-1, keepdim=True).movedim(-1, dim)

# Below this many rows and columns a product is small: one thread (see the module docstring).
SMALL = 128


def is_small(rows: int, cols: int) -> bool:
    return rows < SMALL and cols < SMALL


@contextmanager
def one_thread() -> Iterator[None]:
    """PyTorch on one thread inside the block, for the calling thread (its count is per
    thread): for small results made once and cached (positional tables, resampling weights),
    whose bits must not depend on the thread count of whoever made them first."""
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


def product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b (torch.matmul), with the same bits at any thread count: small products (see
    `SMALL`) on one thread."""
    if a.device.type == "cpu" and is_small(a.shape[-2] if a.dim() > 1 else 1, b.shape[-1]):
        with one_thread():
            return a @ b
    return a @ b


def small_work(rows: int) -> AbstractContextManager:
    """One thread for work whose products have fewer than `SMALL` rows (a frame of a few
    patches, a few crops of a tiny model), else no change."""
    return one_thread() if rows < SMALL else nullcontext()
