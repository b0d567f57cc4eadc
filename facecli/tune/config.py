"""How a head is trained: ``TuneConfig``, light (no numpy), so the command line can read its defaults."""

from __future__ import annotations

from dataclasses import dataclass

from facecli.calibration import DEFAULT_FPIR, check_fpir
from facecli.errors import BadValue
from facecli.modes import HEADS, LOSSES, MININGS

#: The margin of each loss: alpha = 0.2 for the triplet loss, as FaceNet; for the contrastive loss, the squared
#: distance that pairs of two people are pushed beyond (1.4, close to the models' 1:1 taus of 1.26-1.36).
DEFAULT_MARGIN = {"triplet": 0.2, "contrastive": 1.4}


@dataclass(frozen=True)
class TuneConfig:
    """Every setting of a training run (``facecli tune``'s options); same data, same config: same head."""

    head: str = "linear"  # linear | two-layer
    out_dim: int | None = None  # None: the base model's size
    loss: str = "triplet"  # triplet | contrastive
    margin: float | None = None  # None: alpha 0.2 (triplet, FaceNet) or 1.4 (contrastive)
    mining: str = "semi-hard"  # semi-hard | hard | all
    people_per_batch: int = 64  # P (bench/tune_lfw.py --mode study: 64 beat 16 and 32, matched 128)
    images_per_person: int = 4  # K
    epochs: int = 40  # at most
    patience: int = 8  # epochs without a better validation figure before stopping
    learning_rate: float = 3e-4  # Adam's step size (bench/tune_lfw.py --mode study: 1e-3 overshoots)
    weight_decay: float = 0.0  # pulls the weights towards the initial head (the base model)
    val_fraction: float = 0.25
    seed: int = 0
    fpir: float = DEFAULT_FPIR  # the validation figure: FNIR at this FPIR

    @property
    def alpha(self) -> float:
        return DEFAULT_MARGIN[self.loss] if self.margin is None else float(self.margin)

    def check(self) -> None:
        """Raise a BadValue naming the setting when one cannot work."""
        for name, value, choices in (("head", self.head, HEADS), ("loss", self.loss, LOSSES),
                                     ("mining", self.mining, MININGS)):
            if value not in choices:
                raise BadValue(name, value, f"choose from {', '.join(choices)}")
        if not 0 < self.val_fraction < 1:
            raise BadValue("val_fraction", self.val_fraction, "must be between 0 and 1")
        for name, value in (("people_per_batch", self.people_per_batch), ("images_per_person", self.images_per_person)):
            if value < 2:
                raise BadValue(name, value, "online mining needs at least 2 people of 2 photos in each batch")
        for name, value in (("margin", self.alpha), ("learning_rate", self.learning_rate)):
            if not value > 0:
                raise BadValue(name, value, "must be positive")
        if self.epochs < 0 or self.patience < 1:
            raise BadValue("epochs" if self.epochs < 0 else "patience", min(self.epochs, self.patience),
                           "epochs cannot be negative, and patience is at least 1")
        check_fpir(self.fpir)
