"""Triplet and contrastive losses on squared L2 distances, with online mining inside a mini-batch.

Triplet (FaceNet): L = max(d(a, p) - d(a, n) + alpha, 0) over triplets of an
anchor a, a positive p (same person) and a negative n (another person),
d the squared L2 distance between unit embeddings. Every ordered pair of two
different photos of one person is an anchor-positive pair; its negative is
chosen inside the batch by the mining rule:

- ``semi-hard`` (FaceNet's): the nearest negative that is still farther than
  the positive, restricted to d(a, p) < d(a, n) < d(a, p) + alpha so that it
  violates the margin. A pair with no such negative gives no triplet: its
  negatives are either all beyond the margin already (nothing to learn) or
  nearer than the positive (hard negatives, which FaceNet avoids because they
  can collapse the embedding early in training).
- ``hard``: the nearest negative of the anchor, whatever its distance.
- ``all``: every negative; every triplet with a positive loss counts.

The loss of a batch is the mean over its active triplets (those with a
positive loss), so it does not shrink just because easy triplets abound;
the fraction of candidate triplets that are active is reported beside it.

Contrastive (pairs): L = d(a, p) for a pair of one person, max(margin - d(a, n), 0)
for a pair of two people, the mean over the positive pairs plus the mean over
the negative pairs mining keeps: ``all`` every negative pair, ``hard`` each
anchor's nearest negative, ``semi-hard`` for each anchor-positive pair the
nearest negative farther than the positive (FaceNet's choice, without the
upper bound: here the contrastive margin decides whether it is active).

Each function returns the gradient of the loss with respect to the distance
matrix; ``distance_grad`` carries it to the embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecli.errors import BadValue
from facecli.modes import LOSSES, MININGS


@dataclass(frozen=True)
class BatchLoss:
    loss: float
    active: float  # fraction of candidate triplets (or selected negative pairs) with a positive loss
    grad: np.ndarray  # (B, B) dL/dD


def sq_distance_matrix(y: np.ndarray) -> np.ndarray:
    """(B, D) rows -> (B, B) squared L2 distances, computed exactly as ``distance_grad`` differentiates."""
    sq = np.sum(y * y, axis=1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * (y @ y.T), 0.0)


def distance_grad(grad_d: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dy from dL/dD, where D[i, j] = ||y_i - y_j||^2."""
    g = grad_d + grad_d.T
    return 2.0 * (g.sum(axis=1, keepdims=True) * y - g @ y)


def anchor_positive_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair (a, p), a != p, of rows with the same label."""
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    return np.nonzero(same)


def mine_triplets(dist: np.ndarray, labels: np.ndarray, margin: float, mining: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The triplets (anchors, positives, negatives) a mining rule selects, and the number of candidates.

    Candidates are the anchor-positive pairs for ``semi-hard`` and ``hard``, and every
    (a, p, n) for ``all``. ``all`` returns only the triplets with a positive loss.
    """
    if mining not in MININGS:
        raise BadValue("mining", mining, f"choose from {', '.join(MININGS)}")
    a, p = anchor_positive_pairs(labels)
    negative = labels[a][:, None] != labels[None, :]  # (pairs, B)
    d_an = dist[a]  # (pairs, B)
    d_ap = dist[a, p][:, None]
    if mining == "all":
        keep = negative & (d_ap - d_an + margin > 0)
        rows, n = np.nonzero(keep)
        return a[rows], p[rows], n, int(negative.sum())
    allowed = negative & (d_an > d_ap) & (d_an < d_ap + margin) if mining == "semi-hard" else negative
    masked = np.where(allowed, d_an, np.inf)
    n = np.argmin(masked, axis=1)
    found = np.isfinite(masked[np.arange(len(a)), n])
    return a[found], p[found], n[found], len(a)


def triplet_loss(dist: np.ndarray, labels: np.ndarray, margin: float = 0.2, mining: str = "semi-hard") -> BatchLoss:
    """The mean triplet loss over the batch's active mined triplets."""
    a, p, n, candidates = mine_triplets(dist, labels, margin, mining)
    hinge = dist[a, p] - dist[a, n] + margin
    on = hinge > 0
    a, p, n, hinge = a[on], p[on], n[on], hinge[on]
    grad = np.zeros_like(dist)
    if len(a):
        w = 1.0 / len(a)
        np.add.at(grad, (a, p), w)
        np.add.at(grad, (a, n), -w)
    return BatchLoss(float(hinge.mean()) if len(a) else 0.0, len(a) / max(candidates, 1), grad)


def contrastive_loss(dist: np.ndarray, labels: np.ndarray, margin: float = 1.4, mining: str = "semi-hard"
                     ) -> BatchLoss:
    """Positive pairs pulled together, the mined negative pairs pushed beyond ``margin``."""
    a, p = anchor_positive_pairs(labels)
    upper = a < p  # each unordered positive pair once
    a, p = a[upper], p[upper]
    if mining == "all":
        i, j = np.nonzero(np.triu(labels[:, None] != labels[None, :], 1))
    else:
        other = labels[:, None] != labels[None, :]
        if mining == "hard":
            masked = np.where(other, dist, np.inf)
            i = np.arange(len(labels))
        else:  # semi-hard: per anchor-positive pair (both directions), the nearest negative beyond the positive
            ao, po = anchor_positive_pairs(labels)
            masked = np.where(other[ao] & (dist[ao] > dist[ao, po][:, None]), dist[ao], np.inf)
            i = ao
        j = np.argmin(masked, axis=1)
        found = np.isfinite(masked[np.arange(len(i)), j])
        i, j = i[found], j[found]
    grad = np.zeros_like(dist)
    loss = 0.0
    if len(a):
        loss += float(dist[a, p].mean())
        np.add.at(grad, (a, p), 1.0 / len(a))
    hinge = margin - dist[i, j]
    on = hinge > 0
    if len(i):
        loss += float(np.maximum(hinge, 0).sum() / len(i))
        np.add.at(grad, (i[on], j[on]), -1.0 / len(i))
    return BatchLoss(loss, float(on.mean()) if len(i) else 0.0, grad)


def batch_loss(loss: str, dist: np.ndarray, labels: np.ndarray, margin: float, mining: str) -> BatchLoss:
    if loss == "triplet":
        return triplet_loss(dist, labels, margin, mining)
    if loss == "contrastive":
        return contrastive_loss(dist, labels, margin, mining)
    raise BadValue("loss", loss, f"choose from {', '.join(LOSSES)}")


def mean_triplet_loss(y: np.ndarray, labels: np.ndarray, margin: float = 0.2) -> float:
    """max(d(a,p) - d(a,n) + margin, 0) averaged over every triplet of a set: a measure that no mining biases."""
    dist = sq_distance_matrix(np.asarray(y, dtype=np.float64))
    a, p = anchor_positive_pairs(labels)
    total, count = 0.0, 0
    for start in range(0, len(a), 4096):  # (pairs, N) blocks keep the memory small
        aa, pp = a[start:start + 4096], p[start:start + 4096]
        neg = labels[aa][:, None] != labels[None, :]
        hinge = np.maximum(dist[aa, pp][:, None] - dist[aa] + margin, 0.0)
        total += float(hinge[neg].sum())
        count += int(neg.sum())
    return total / max(count, 1)
