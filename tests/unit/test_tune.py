"""facecli tune's maths on distances and vectors built for the test (no models): mining rules, the
gradient, the batches of an epoch.
"""

from __future__ import annotations

import numpy as np
import pytest

from facecli.modes import HEADS
from facecli.tune import mine_triplets
from facecli.tune.losses import sq_distance_matrix, triplet_loss

ALPHA = 0.2


# -- mining on distances built for the test ------------------------------------------------------
def _built_batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """12 random unit vectors of 4 people in 3-d: distances spread over 0-4, many in every band."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(12, 3))
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return sq_distance_matrix(y), np.repeat(np.arange(4), 3)


def test_semi_hard_mining_on_a_hand_built_line():
    # anchor 0 at 0, positive 1 at 0.5 (d 0.25); negatives 2, 3, 4 at d 0.09, 0.36, 0.42 from the anchor
    pos = np.array([0.0, 0.5, 0.3, 0.6, np.sqrt(0.42)])
    dist = (pos[:, None] - pos[None, :]) ** 2
    labels = np.array([0, 0, 1, 2, 3])
    a, p, n, candidates = mine_triplets(dist, labels, ALPHA, "semi-hard")
    got = {(int(i), int(j)): int(k) for i, j, k in zip(a, p, n)}
    # (0, 1): 0.25 < d < 0.45 holds for 3 (0.36) and 4 (0.42); the nearest is 3. 2 (0.09) is hard: not taken
    assert got[(0, 1)] == 3
    # (1, 0): negatives of 1 at 0.04, 0.01, 0.022 are all nearer than the positive (0.25): no triplet
    assert (1, 0) not in got and candidates == 2
    # hard mining takes the nearest negative whatever its distance
    a, p, n, _ = mine_triplets(dist, labels, ALPHA, "hard")
    assert {(int(i), int(j)): int(k) for i, j, k in zip(a, p, n)} == {(0, 1): 2, (1, 0): 3}


@pytest.mark.parametrize("seed", range(5))
def test_semi_hard_mining_picks_exactly_the_nearest_negative_inside_the_band(seed):
    dist, labels = _built_batch(seed)
    a, p, n, candidates = mine_triplets(dist, labels, ALPHA, "semi-hard")
    mined = {(int(i), int(j)): int(k) for i, j, k in zip(a, p, n)}
    expected = {}
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i == j or labels[i] != labels[j]:
                continue
            band = [k for k in range(len(labels))
                    if labels[k] != labels[i] and dist[i, j] < dist[i, k] < dist[i, j] + ALPHA]
            if band:
                expected[(i, j)] = min(band, key=lambda k: dist[i, k])
    assert candidates == 4 * 3 * 2
    assert mined == expected and expected  # some pairs have a band negative, the others none
    assert len(expected) < candidates
    res = triplet_loss(dist, labels, ALPHA, "semi-hard")
    losses = [dist[i, j] - dist[i, k] + ALPHA for (i, j), k in expected.items()]
    assert all(0 < v < ALPHA for v in losses)
    assert res.loss == pytest.approx(np.mean(losses)) and res.active == pytest.approx(len(expected) / candidates)


@pytest.mark.parametrize("seed", range(3))
def test_hard_and_all_mining(seed):
    dist, labels = _built_batch(seed)
    a, p, n, candidates = mine_triplets(dist, labels, ALPHA, "hard")
    assert candidates == len(a) == 24  # every anchor-positive pair, with its anchor's nearest negative
    for i, j, k in zip(a, p, n):
        assert labels[i] == labels[j] and labels[k] != labels[i]
        assert dist[i, k] == min(dist[i, m] for m in range(12) if labels[m] != labels[i])
    a, p, n, candidates = mine_triplets(dist, labels, ALPHA, "all")
    brute = {(i, j, k) for i in range(12) for j in range(12) for k in range(12)
             if i != j and labels[i] == labels[j] and labels[k] != labels[i] and dist[i, j] - dist[i, k] + ALPHA > 0}
    assert {(int(i), int(j), int(k)) for i, j, k in zip(a, p, n)} == brute
    assert candidates == 24 * 9


def test_the_gradient_matches_finite_differences():
    """The numpy backward pass of both heads, checked against the loss it differentiates."""
    from facecli.tune.head import init_head
    from facecli.tune.losses import distance_grad

    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 6)).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = np.repeat(np.arange(4), 3)
    for kind in HEADS:
        head = init_head(kind, 6)
        head.params = [p.astype(np.float64) + 0.3 * rng.normal(size=p.shape) for p in head.params]

        def loss_of(h):
            y, _ = h.forward_train(x)
            # "all" mining with a wide margin: the selected set is stable under tiny steps
            return triplet_loss(sq_distance_matrix(y), labels, 3.0, "all")

        y, cache = head.forward_train(x)
        grads = head.backward(cache, distance_grad(loss_of(head).grad, y))
        for k, p in enumerate(head.params):
            idx = tuple(rng.integers(0, s) for s in p.shape)
            old = p[idx]
            p[idx] = old + 1e-6
            up = loss_of(head).loss
            p[idx] = old - 1e-6
            down = loss_of(head).loss
            p[idx] = old
            assert grads[k][idx] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("people", [9, 16, 17])
def test_every_person_is_in_one_batch_of_an_epoch(people):
    from facecli.tune.train import batches

    rows_of = [np.arange(3 * i, 3 * i + 3) for i in range(people)]
    found = batches(rows_of, 8, 2, np.random.default_rng(0))
    persons = [sorted({int(r) // 3 for r in b}) for b in found]
    assert sorted(p for b in persons for p in b) == list(range(people))  # each once, none lost
    assert all(len(b) >= 2 for b in persons) and all(len(b) == 2 * len(p) for b, p in zip(found, persons))
