"""How well a face can be judged: signals the pipeline has anyway, combined into one quality in 0-1.

A face too poor to judge (tiny, blurred, dark and noisy, crushed by JPEG)
gives an embedding that lands near anyone's: matched against a gallery it is
as likely to be given someone else's name as its own. Its quality is
measured from what embedding it leaves behind, at no extra network run
(0.05-0.2 ms of OpenCV on the 112 x 112 crop, bench/ACCURACY.md):

- **size** and the detector's **score**;
- **sharpness**: the variance of the Laplacian of the grey input crop (blur
  and an upscaled tiny face leave no fine detail);
- **exposure**: the crop's mean grey level, its contrast, and the share of
  pixels clipped to black or white;
- **norm**: the length of the network's raw output: margin-trained networks
  such as SFace give shorter ones to faces they cannot read (bench/ACCURACY.md,
  issue 20);
- **mirror**: the cosine between the raw embeddings of the crop and of its
  mirror image, which a model run with flip (SFace) computes anyway: a face
  the network reads alike both ways round is one it sees clearly.

The two embedders of the fusion are not compared: their spaces are unrelated,
so they could only be compared through the gallery (a score normalisation,
which issue 20 measured), not as a property of the face.

The signals are combined by a logistic model (``QualityModel``) whose
coefficients, fitted by bench/quality.py on one half of LFW's people
(clean and degraded photos), are stored per pipeline in the manifest with
the threshold under which a face is too poor to name (``min_quality``, which
``decisions.min_quality`` applies): the quality is the fitted chance that
the face's nearest enrolled person is its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facecli.errors import ModelError
from facecli.values import Detection, QualitySignals

if TYPE_CHECKING:
    import numpy as np

    from facecli.models import PipelineSpec

#: Grey levels at or past which a pixel counts as clipped (black or white).
DARK, BRIGHT = 5, 250

#: What the logistic model may combine: each a number from a face's signals.
FEATURES: dict[str, Callable[[QualitySignals], float]] = {
    "log_size": lambda s: math.log(max(s.size, 1.0)),
    "score": lambda s: s.score,
    "log_sharpness": lambda s: math.log1p(s.sharpness),
    "brightness": lambda s: s.brightness / 255.0,
    "off_grey": lambda s: abs(s.brightness / 255.0 - 0.5),  # under- or over-exposed: far from mid-grey
    "contrast": lambda s: s.contrast / 255.0,
    "clipped": lambda s: s.clipped,
    "log_norm": lambda s: math.log(max(s.norm, 1e-6)),
    "mirror": lambda s: 0.0 if s.mirror is None else s.mirror,
}


def measure(detection: Detection, crop: np.ndarray, norm: float, mirror: float | None = None) -> QualitySignals:
    """The signals of one face: its ``detection``, its RGB input ``crop``, the raw output ``norm`` and the
    ``mirror`` agreement of the model that embedded that crop."""
    # OpenCV and numpy: this module is imported by the pipeline, which has loaded both already
    import cv2
    import numpy as np

    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
    mean, std = cv2.meanStdDev(grey)
    clipped = float(np.count_nonzero((grey <= DARK) | (grey >= BRIGHT))) / grey.size
    return QualitySignals(size=float(min(detection.width, detection.height)), score=float(detection.score),
                          sharpness=float(cv2.Laplacian(grey, cv2.CV_64F).var()), brightness=float(mean[0, 0]),
                          contrast=float(std[0, 0]), clipped=clipped, norm=float(norm),
                          mirror=None if mirror is None else float(mirror))


def feature_row(signals: QualitySignals, names: Sequence[str]) -> list[float]:
    """The model's inputs for one face, in the order of ``names``."""
    return [FEATURES[n](signals) for n in names]


@dataclass(frozen=True)
class QualityModel:
    """A pipeline's face quality: sigmoid(intercept + coef . (features - mean) / scale), and the threshold under
    which a face is too poor to name (``min_quality``)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    min_quality: float
    measured_on: str = ""

    @classmethod
    def of(cls, spec: PipelineSpec) -> QualityModel | None:
        """The quality model of a pipeline's manifest entry; None when it has none (no face of it is judged)."""
        q = spec.quality
        if not q:
            return None
        return cls(tuple(q["features"]), tuple(q["mean"]), tuple(q["scale"]), tuple(q["coef"]),
                   float(q["intercept"]), float(q["min_quality"]), q.get("measured_on", ""))

    def __post_init__(self) -> None:
        unknown = sorted(set(self.features) - set(FEATURES))
        if unknown or not len(self.features) == len(self.mean) == len(self.scale) == len(self.coef):
            raise ModelError("quality", f"the manifest's quality model is malformed (features {list(self.features)}"
                                        + (f", unknown: {unknown}" if unknown else "") + ")")

    def logit(self, row: Sequence[float]) -> float:
        return self.intercept + sum(c * (x - m) / s for c, x, m, s in zip(self.coef, row, self.mean, self.scale))

    def score(self, signals: QualitySignals) -> float:
        """The face's quality, 0-1."""
        z = self.logit(feature_row(signals, self.features))
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
