"""Text embeddings on disk (core/text_store.py): read back equal to freshly encoded ones, a
corrupt or foreign file ignored with one warning and rebuilt, a second process start that
spends under a second on text, and several processes writing one folder at once."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.tiny_models import tiny_files, tiny_segmenter

from ovseg_ros.core.text import TextEmbeddingCache
from ovseg_ros.core.text_store import MAGIC, TextEmbeddingStore

TEST_DIR = Path(__file__).resolve().parents[1]
NAMES = ["traffic cone", "fire extinguisher", "forklift", "pallet", "cardboard box", "ladder"]


def ours(caplog) -> list[str]:
    """The text store's log messages (open_clip warns about random weights, too)."""
    return [r.getMessage() for r in caplog.records if r.name == "ovseg_ros.core.text_store"]


def fresh(seg, names) -> torch.Tensor:
    """The embeddings encoded now, by a cache without a disk store."""
    cache = TextEmbeddingCache(seg.clip, seg.tokenizer, seg.runtime)
    return cache.embed(names)


def test_loaded_embeddings_equal_freshly_encoded_ones(tmp_path):
    first = tiny_segmenter(tmp_path)
    first.set_prompts(NAMES)
    assert first.text_cache.encoded_names >= len(NAMES)
    second = tiny_segmenter(tmp_path)  # same weights, same cache_dir: a later start
    second.set_prompts(NAMES)
    assert second.text_cache.loaded_names == len(NAMES) + 1  # and "background"
    assert second.text_cache.encoded_names == 0  # background came from disk too
    loaded = second.text_cache.embed(NAMES)
    assert (loaded - fresh(second, NAMES)).abs().max() <= 1e-6
    assert (loaded - first.text_cache.embed(NAMES)).abs().max() <= 1e-6
    store = second.text_cache.store
    assert store.folder.parent == tmp_path / "cache" / "text"
    key = json.loads((store.folder / "key.json").read_text())
    assert key["model"] == first.config.model and len(key["text_weights"]) == 64
    assert key["dtype"] == "float32" and key["encoder"] == "prefix"


def test_another_key_is_another_folder(tmp_path):
    seg = tiny_segmenter(tmp_path)
    seg.set_prompts(NAMES[:2])
    other = TextEmbeddingCache(seg.clip, seg.tokenizer, seg.runtime,
                               templates=("a photo of a {}.",), store_folder=seg.text_cache
                               .store_folder, model=seg.config.model)
    assert other.store.folder != seg.text_cache.store.folder  # templates are in the key
    assert other.load(NAMES[:2]) == NAMES[:2]  # nothing of the other key is read


def _damage(store: TextEmbeddingStore, donor: TextEmbeddingStore) -> dict[str, str]:
    """Corrupt NAMES[0]'s numbers, truncate NAMES[1]'s file, give NAMES[2] the file of
    another name, and NAMES[3] the same name's file of another key (foreign)."""
    paths = {n: store.path(n) for n in NAMES[:4]}
    data = bytearray(paths[NAMES[0]].read_bytes())
    data[-3] ^= 0xFF
    paths[NAMES[0]].write_bytes(bytes(data))
    paths[NAMES[1]].write_bytes(paths[NAMES[1]].read_bytes()[:len(MAGIC) + 9])
    paths[NAMES[2]].write_bytes(store.path(NAMES[5]).read_bytes())
    paths[NAMES[3]].write_bytes(donor.path(NAMES[3]).read_bytes())
    return {NAMES[0]: "corrupt", NAMES[1]: "unreadable", NAMES[2]: "it holds",
            NAMES[3]: "other weights, templates or versions"}


def test_corrupt_or_foreign_files_are_ignored_with_one_warning_and_rebuilt(tmp_path, caplog):
    seg = tiny_segmenter(tmp_path)
    seg.set_prompts(NAMES)
    store = seg.text_cache.store
    donor_cache = TextEmbeddingCache(seg.clip, seg.tokenizer, seg.runtime,
                                     templates=("a photo of a {}.",),
                                     store_folder=tmp_path / "donor", model=seg.config.model)
    donor_cache.embed(NAMES)
    why = _damage(store, donor_cache.store)
    caplog.set_level(logging.WARNING, logger="ovseg_ros.core.text_store")
    later = tiny_segmenter(tmp_path)
    later.set_prompts(NAMES)
    assert later.text_cache.encoded_names == 4 and later.text_cache.loaded_names == 2 + 1
    warnings = ours(caplog)
    assert len(warnings) == 4, warnings  # one per bad file
    for name, fragment in why.items():
        hits = [w for w in warnings if str(store.path(name)) in w]
        assert len(hits) == 1 and fragment in hits[0], (name, warnings)
    caplog.clear()
    later.text_cache.store.load([NAMES[0]])  # rewritten: valid now, no warning
    assert not ours(caplog)
    again = tiny_segmenter(tmp_path)
    again.set_prompts(NAMES)
    assert again.text_cache.encoded_names == 0 and not ours(caplog)
    np.testing.assert_allclose(again.text_cache.embed(NAMES).numpy(),
                               fresh(again, NAMES).numpy(), atol=1e-6)


def test_a_bad_file_warns_once_per_process(tmp_path, caplog):
    seg = tiny_segmenter(tmp_path)
    seg.set_prompts(NAMES[:1])
    store = seg.text_cache.store
    store.path(NAMES[0]).write_bytes(b"not an embedding")
    caplog.set_level(logging.WARNING, logger="ovseg_ros.core.text_store")
    assert store.load(NAMES[:1]) == {} and store.load(NAMES[:1]) == {}
    assert len(ours(caplog)) == 1 and store.rejected == 2


def test_an_unwritable_folder_is_reported_and_ignored(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    seg = tiny_segmenter(tmp_path)
    cache = TextEmbeddingCache(seg.clip, seg.tokenizer, seg.runtime, store_folder=blocker,
                               model=seg.config.model)
    caplog.set_level(logging.WARNING, logger="ovseg_ros.core.text_store")
    emb = cache.embed(NAMES[:2])
    assert emb.shape[0] == 2 and cache.encoded_names == 2
    cache.embed(NAMES[2:4])
    assert len(ours(caplog)) == 1 and "cannot write to" in ours(caplog)[0], ours(caplog)


CHILD = """
import json, sys, time
sys.path.insert(0, {test_dir!r})
from pathlib import Path
import numpy as np
from helpers.tiny_models import tiny_segmenter
names = [f"object number {{i}}" for i in range({count})]
from ovseg_ros.core.text_store import text_weights_digest
seg = tiny_segmenter(Path({folder!r}))
t0 = time.perf_counter()
text_weights_digest(seg.clip)  # the store's key, computed once per start (at construction)
seg.set_prompts(names)
text_s = time.perf_counter() - t0
np.save({out!r}, seg.text_cache.embed(names).numpy())
print(json.dumps(dict(text_s=text_s, encoded=seg.text_cache.encoded_names,
                      loaded=seg.text_cache.loaded_names,
                      rejected=seg.text_cache.store.rejected)))
"""


def _start(folder: Path, count: int, out: Path) -> subprocess.Popen:
    code = CHILD.format(test_dir=str(TEST_DIR), count=count, folder=str(folder), out=str(out))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _report(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert "text cache" not in err, err[-2000:]  # no warning about a cache file
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.quiet  # a time bound
def test_a_second_start_with_250_names_spends_under_a_second_on_text(tmp_path):
    tiny_files(tmp_path)  # the weights both processes load
    first = _report(_start(tmp_path, 250, tmp_path / "first.npy"))
    second = _report(_start(tmp_path, 250, tmp_path / "second.npy"))
    print(f"text: first start {first['text_s']:.2f} s ({first['encoded']} encoded), second "
          f"{second['text_s']:.3f} s ({second['loaded']} read)")
    assert first["encoded"] >= 250 and second["encoded"] == 0
    assert second["loaded"] == 250 + 1  # and "background"
    assert second["text_s"] < 1.0
    np.testing.assert_allclose(np.load(tmp_path / "second.npy"), np.load(tmp_path / "first.npy"),
                               atol=1e-6)


@pytest.mark.slow
def test_processes_writing_one_folder_at_once(tmp_path):
    tiny_files(tmp_path)
    procs = [_start(tmp_path, 60, tmp_path / f"p{k}.npy") for k in range(3)]
    reports = [_report(p) for p in procs]
    assert all(r["rejected"] == 0 for r in reports), reports
    arrays = [np.load(tmp_path / f"p{k}.npy") for k in range(3)]
    for a in arrays[1:]:
        np.testing.assert_allclose(a, arrays[0], atol=1e-6)
    after = _report(_start(tmp_path, 60, tmp_path / "after.npy"))
    assert after["encoded"] == 0 and after["rejected"] == 0
    leftovers = [p.name for p in (tmp_path / "cache" / "text").rglob(".part-*")]
    assert not leftovers
