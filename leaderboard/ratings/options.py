"""The settings of a rating run, validated once where they are made instead of in every function."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BASE = 1000.0
# L2 precision on the log-strengths (natural units). Negligible next to any real battle count, but it
# makes the likelihood strictly concave, so undefeated/winless models and disconnected groups stay finite.
DEFAULT_PRIOR = 1e-6


@dataclass(frozen=True)
class RatingOptions:
    """How ratings are fitted and bootstrapped.

    Frozen, so one value can be passed down through every layer (and shared between calls) without any
    of them changing it.

    - rounds: bootstrap rounds (0: point ratings only, nan CIs); seed: their random stream.
    - level: coverage of the percentile CIs, e.g. 0.95 -> the 2.5% and 97.5% quantiles.
    - anchor: the model that gets `base` (None: the mean rating is `base`).
    - prior: L2 precision on natural-unit log-strengths; keeps every fit finite and unique.
    - tol, max_iter: Newton stops when the largest step is below tol (natural units; 1e-10 = 2e-8
      rating points), or after max_iter steps with a RuntimeWarning.
    """

    rounds: int = 1000
    seed: int = 0
    level: float = 0.95
    anchor: str | None = None
    base: float = DEFAULT_BASE
    prior: float = DEFAULT_PRIOR
    tol: float = 1e-10
    max_iter: int = 200

    def __post_init__(self) -> None:
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}")
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {self.level}")
        if not self.prior > 0:
            raise ValueError("prior must be > 0 (it keeps the maximum-likelihood estimate finite and unique)")


DEFAULT_OPTIONS = RatingOptions()
