"""The projection head: frozen unit embeddings in, new unit embeddings out, with numpy gradients.

``linear``: y = n(x W + b). ``two-layer``: y = n(relu(x W1 + b1) W2 + b2), where
n() scales each row to unit length. Both start as the identity map when the
output keeps the input's size (``two-layer`` through relu(h) - relu(-h) = h, so
its hidden layer is twice the input), so training begins from the base model's
own embedding and early stopping can keep it if nothing better is found. A
smaller output starts from the training embeddings' principal axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecli.errors import BadValue
from facecli.modes import HEADS


@dataclass
class Head:
    """The parameters of a head, float32, in forward order: [W, b] or [W1, b1, W2, b2]."""

    kind: str
    params: list[np.ndarray]

    @property
    def in_dim(self) -> int:
        return int(self.params[0].shape[0])

    @property
    def out_dim(self) -> int:
        return int(self.params[-2].shape[1])

    @property
    def hidden(self) -> int | None:
        return int(self.params[0].shape[1]) if self.kind == "two-layer" else None

    def copy(self) -> Head:
        return Head(self.kind, [p.copy() for p in self.params])

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, in_dim) -> (N, out_dim) float32 unit rows: what the exported graph computes."""
        return self.forward_train(np.asarray(x, dtype=np.float32))[0]

    def forward_train(self, x: np.ndarray) -> tuple[np.ndarray, tuple]:
        """The output and what ``backward`` needs."""
        if self.kind == "linear":
            w, b = self.params
            z = x @ w + b
            hid = None
        else:
            w1, b1, w2, b2 = self.params
            hid = x @ w1 + b1
            z = np.maximum(hid, 0.0) @ w2 + b2
        norm = np.linalg.norm(z, axis=1, keepdims=True)
        y = z / norm
        return y, (x, hid, y, norm)

    def backward(self, cache: tuple, dy: np.ndarray) -> list[np.ndarray]:
        """Gradients of the parameters, in ``params`` order, from the gradient of the unit outputs."""
        x, hid, y, norm = cache
        dz = (dy - y * np.sum(y * dy, axis=1, keepdims=True)) / norm  # through z / ||z||
        if self.kind == "linear":
            return [x.T @ dz, dz.sum(axis=0)]
        _, _, w2, _ = self.params
        act = np.maximum(hid, 0.0)
        dhid = (dz @ w2.T) * (hid > 0)
        return [x.T @ dhid, dhid.sum(axis=0), act.T @ dz, dz.sum(axis=0)]


def init_head(kind: str, in_dim: int, out_dim: int | None = None, x: np.ndarray | None = None) -> Head:
    """A head equal to the identity (``out_dim`` = ``in_dim``) or to the projection on ``x``'s top principal axes."""
    if kind not in HEADS:
        raise BadValue("head", kind, f"choose from {', '.join(HEADS)}")
    out_dim = out_dim or in_dim
    if not 1 <= out_dim <= in_dim:
        raise BadValue("out_dim", out_dim, f"must be between 1 and the input size {in_dim}")
    if out_dim == in_dim:
        proj = np.eye(in_dim, dtype=np.float32)
    else:
        if x is None:
            raise BadValue("out_dim", out_dim, "a head smaller than its input starts from principal axes: "
                                               "give the embeddings")
        # uncentred, as distances between unit vectors are: the axes that keep most of x's squared length
        _, _, vt = np.linalg.svd(np.asarray(x, dtype=np.float64), full_matrices=False)
        signs = np.sign(vt[:out_dim].sum(axis=1, keepdims=True)) + (vt[:out_dim].sum(axis=1, keepdims=True) == 0)
        proj = (vt[:out_dim] * signs).T.astype(np.float32)  # signs fixed so the result is deterministic
    zeros = np.zeros(out_dim, dtype=np.float32)
    if kind == "linear":
        return Head(kind, [proj, zeros])
    eye = np.eye(in_dim, dtype=np.float32)
    w1 = np.concatenate([eye, -eye], axis=1)
    w2 = np.concatenate([proj, -proj], axis=0)
    return Head(kind, [w1, np.zeros(2 * in_dim, dtype=np.float32), w2, zeros])
