"""label_ids: stable (an id is never handed to another name) and reuse (the lowest id no name
of the new vocabulary holds), versions, and carrying ids over a reconfigure."""

from __future__ import annotations

import random

import pytest

from ovseg_ros.core.vocabulary import MAX_MONO8_ID, Vocabulary, VocabularyError


def pairs(snapshot) -> list[tuple[str, int]]:
    return list(zip(snapshot.names, snapshot.ids, strict=True))


def test_reuse_keeps_current_ids_and_fills_the_lowest_free_ones():
    vocab = Vocabulary(label_ids="reuse")
    assert pairs(vocab.assign(["cat", "dog", "car"])) == [("cat", 1), ("dog", 2), ("car", 3)]
    # car stays 3; the new names take 1 and 2, freed by cat and dog
    assert pairs(vocab.assign(["car", "bird", "tree"])) == [("car", 3), ("bird", 1),
                                                            ("tree", 2)]
    assert pairs(vocab.assign(["Tree", "cat", "x", "y"])) == [("Tree", 2), ("cat", 1),
                                                              ("x", 3), ("y", 4)]
    assert vocab.snapshot.version == 3  # every change is a new version


def test_stable_never_hands_an_id_to_another_name():
    vocab = Vocabulary(label_ids="stable")
    vocab.assign(["cat", "dog"])
    assert pairs(vocab.assign(["dog", "bird"])) == [("dog", 2), ("bird", 3)]
    assert pairs(vocab.assign(["cat", "fish"])) == [("cat", 1), ("fish", 4)]


def test_reuse_stays_mono8_over_many_changes_stable_does_not():
    """Vocabularies of at most 255 names, changed at random 300 times: reuse keeps every id
    <= 255 and each vocabulary's ids distinct; stable passes 255."""
    rng = random.Random(0)
    words = [f"w{i}" for i in range(3000)]
    reuse, stable = Vocabulary(label_ids="reuse"), Vocabulary(label_ids="stable")
    current: list[str] = []
    for _ in range(300):
        keep = rng.sample(current, rng.randint(0, len(current)))
        fresh = rng.sample([w for w in words if w not in current], rng.randint(1, 60))
        current = (keep + fresh)[:MAX_MONO8_ID]
        rng.shuffle(current)
        snap = reuse.assign(current)
        assert max(snap.ids) <= MAX_MONO8_ID and len(set(snap.ids)) == len(snap.ids)
        stable.assign(current)
    assert max(stable.snapshot.ids) > MAX_MONO8_ID


def test_carry_over_keeps_ids_of_the_last_vocabulary_and_counts_on():
    old = Vocabulary(label_ids="reuse")
    old.assign(["a", "b", "c"])
    old.assign(["c", "d"])  # c 3, d 1
    new = old.carry_over(background=True)
    assert new.label_ids == "reuse" and new.snapshot.version == 2
    assert pairs(new.assign(["d", "e", "c"])) == [("d", 1), ("e", 2), ("c", 3)]
    # to stable: the last names keep their ids, a new one goes above every id handed out
    stable = new.carry_over(True, "stable")
    assert pairs(stable.assign(["c", "z"])) == [("c", 3), ("z", 4)]
    # from stable to reuse: only the current names are held
    back = stable.carry_over(True, "reuse")
    assert pairs(back.assign(["z", "q"])) == [("z", 4), ("q", 1)]
    assert back.snapshot.version == 5


def test_unknown_policy_is_refused():
    with pytest.raises(VocabularyError, match="label_ids='often' is not one of: stable, reuse"):
        Vocabulary(label_ids="often")
