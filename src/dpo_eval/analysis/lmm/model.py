"""``NestedLmm``: a linear mixed model with its REML criterion, fit and inference (the methods
delegate to the modules of each concern)."""

from __future__ import annotations

import numpy as np

from dpo_eval.analysis.lmm import inference, optimisation
from dpo_eval.analysis.lmm.criterion import ProfiledCriterion
from dpo_eval.analysis.lmm.optimisation import LmmFit


class NestedLmm(ProfiledCriterion):
    """Gaussian linear mixed model: nested random intercepts (each term nested in the previous
    one, e.g. institution, institution:participant), or one random term with any design."""

    def default_starts(self) -> list[np.ndarray]:
        return optimisation.default_starts(self)

    def fit(self, starts: list[np.ndarray] | None = None) -> LmmFit:
        """REML fit (see ``optimisation.fit``)."""
        return optimisation.fit(self, starts)

    def _summarise(self, theta: np.ndarray, message: str) -> LmmFit:
        """The fit's quantities and labels at a given theta (not necessarily the optimum)."""
        return optimisation.summarise(self, self._to_phi(theta), message)

    def varpar_derivatives(self, fit: LmmFit) -> tuple[np.ndarray, np.ndarray]:
        return inference.varpar_derivatives(self, fit)

    def satterthwaite(self, fit: LmmFit, contrasts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Satterthwaite degrees of freedom and standard errors for each row of ``contrasts``."""
        return inference.satterthwaite(self, fit, contrasts)

    def random_effects(self, fit: LmmFit) -> dict[str, np.ndarray]:
        return inference.random_effects(self, fit)

    def residuals(self, fit: LmmFit) -> np.ndarray:
        return inference.residuals(self, fit)
