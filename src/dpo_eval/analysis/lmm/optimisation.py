"""Optimisation of the profiled REML criterion and the convergence checks.

Intercept variances are optimised as ``a = theta^2`` (the bound a >= 0 is then an ordinary
active constraint). L-BFGS-B starts from lme4's start and from the boundary of each term; then
projected Newton steps with the exact Hessian polish the optimum. The polish stops when the
Newton decrement ``lambda^2 = g' H^-1 g`` (twice the decrease a full Newton step predicts; Boyd &
Vandenberghe 2004, Convex Optimization, section 9.5.1) is within the criterion's own rounding
noise, ``lambda^2 / 2 <= eps |d(theta)|``: below it no step can be seen to lower the criterion,
and an absolute test would keep taking steps whose acceptance is decided by rounding.

Convergence is judged as lme4's ``check.conv.grad`` does: the gradient in ``theta`` scaled by the
Cholesky factor of the Hessian, ``max min(|H^-1/2 g|, |g|) < 2e-3``, with components on an active
bound (zero variance, criterion increasing into the feasible side) set to zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import linalg, optimize

from dpo_eval.analysis.lmm.structure import RandomTerm

if TYPE_CHECKING:
    from dpo_eval.analysis.lmm.model import NestedLmm

SINGULAR_TOLERANCE = 1e-4  # lme4's isSingular() tolerance on theta (relative SDs)
GRADIENT_TOLERANCE = 2e-3  # lme4's check.conv.grad tolerance on the scaled gradient
NEWTON_MAX_STEPS = 30
BACKTRACKING = (1.0, 0.5, 0.25, 0.125, 1 / 16, 1 / 32)


@dataclass
class LmmFit:
    beta: np.ndarray
    vcov: np.ndarray
    sigma: float
    theta: np.ndarray
    reml_criterion: float
    covariances: dict[str, np.ndarray]
    converged: bool
    singular: bool
    optimizer_message: str
    n_obs: int
    fixed_names: list[str]
    terms: list[RandomTerm] = field(repr=False)
    model: "NestedLmm" = field(repr=False)
    scaled_gradient: float = 0.0
    identifiable: bool = True
    identifiability_note: str = ""
    # The optimiser's parameters at the optimum, bit for bit: the inference reuses the Hessian
    # evaluated there (theta -> phi would round differently and evaluate it again).
    phi: np.ndarray | None = field(default=None, repr=False)

    @property
    def std_errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))


def criterion_rounding(criterion: float) -> float:
    """The rounding noise of a criterion value: one unit in its last place, eps |d|."""
    return float(np.finfo(float).eps * max(abs(criterion), 1.0))


def newton_converged(decrement: float, criterion: float) -> bool:
    """True when a full Newton step's predicted decrease (lambda^2 / 2) is within the
    criterion's rounding noise."""
    return 0.5 * decrement <= criterion_rounding(criterion)


def default_starts(model: "NestedLmm") -> list[np.ndarray]:
    """lme4's start (identity factors) and every variance component on the boundary (with
    variance ratios as parameters, the optimiser leaves the boundary where the criterion falls
    inwards, so this start reaches a boundary optimum from the other side)."""
    base = np.array([1.0 if lb == 0.0 else 0.0 for lb in model.lower_bounds])
    return [base, np.zeros_like(base)]


def free_parameters(model: "NestedLmm", phi: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Parameters not held by an active bound (at 0 with the criterion rising inwards)."""
    at_bound = np.isfinite(model.lower_bounds) & (phi <= 0.0)
    return ~(at_bound & (gradient >= 0.0))


def newton_polish(model: "NestedLmm", phi: np.ndarray, max_steps: int = NEWTON_MAX_STEPS) -> np.ndarray:
    """Projected Newton steps with the exact Hessian and backtracking, until the Newton
    decrement is within the criterion's rounding noise (``newton_converged``). The Hessian at
    the returned point stays in the model's cache for the summary and the inference."""
    lower = np.where(np.isfinite(model.lower_bounds), 0.0, -np.inf)
    current = model._evaluate(phi, 2)
    for _ in range(max_steps):
        g, H = current["gradient"], current["hessian"]
        free = free_parameters(model, phi, g)
        if not free.any():
            break
        try:
            factor = linalg.cho_factor(H[np.ix_(free, free)], lower=True)
        except linalg.LinAlgError:
            break
        step_free = -linalg.cho_solve(factor, g[free])
        if newton_converged(-float(g[free] @ step_free), current["criterion"]):
            break
        step = np.zeros_like(phi)
        step[free] = step_free
        for alpha in BACKTRACKING:
            trial = np.maximum(phi + alpha * step, lower)
            try:
                candidate = model._evaluate(trial, 2)
            except np.linalg.LinAlgError:
                continue
            if candidate["criterion"] <= current["criterion"]:
                phi, current = trial, candidate
                break
        else:
            break
    return phi


def snap_to_boundary(model: "NestedLmm", phi: np.ndarray) -> np.ndarray:
    """Numerically-zero diagonal elements of theta set to the boundary, as lme4 reports them,
    when the criterion there is no worse than at the optimum (up to 1e-10 relative)."""
    current = model._evaluate(phi, 0)["criterion"]
    for index, lb in enumerate(model.lower_bounds):
        theta = model._to_theta(phi)
        if lb == 0.0 and 0.0 < theta[index] < SINGULAR_TOLERANCE:
            trial = phi.copy()
            trial[index] = 0.0
            try:
                at_trial = model._evaluate(trial, 0)["criterion"]
            except np.linalg.LinAlgError:
                continue
            if at_trial <= current + 1e-10 * abs(current):
                phi, current = trial, at_trial
    return phi


def fit(model: "NestedLmm", starts: list[np.ndarray] | None = None) -> LmmFit:
    """REML fit: L-BFGS-B from the given starts and the default ones, the best result polished
    by Newton steps and snapped to the boundary where a variance is numerically zero."""
    bounds = [(0.0, None) if np.isfinite(lb) else (None, None) for lb in model.lower_bounds]
    candidates = []
    for start in [*(starts or []), *default_starts(model)]:
        start = np.maximum(np.asarray(start, dtype=float), model.lower_bounds)
        result = optimize.minimize(model._objective, model._to_phi(start), jac=True, method="L-BFGS-B",
                                   bounds=bounds, options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-7})
        candidates.append(result)
    best = min(candidates, key=lambda r: r.fun)
    phi = snap_to_boundary(model, newton_polish(model, np.asarray(best.x, dtype=float)))
    return summarise(model, phi, best.message if isinstance(best.message, str) else str(best.message))


def summarise(model: "NestedLmm", phi: np.ndarray, message: str) -> LmmFit:
    """The fit at phi: beta, its covariance, sigma, the variance components and the labels
    (converged, singular, identifiable)."""
    out = model._evaluate(phi, 2)
    theta = model._to_theta(phi)
    sigma2 = out["r2"] / (model.n - model.p)
    factors = model.term_factors(theta)
    covariances = {term.name: sigma2 * (f @ f.T) for term, f in zip(model.terms, factors)}
    diagonal = theta[model.lower_bounds == 0.0]
    scaled, note = scaled_gradient(model, phi, out)
    identifiable, identifiability = model.identifiability()
    return LmmFit(
        beta=out["beta"], vcov=sigma2 * out["Ginv"], sigma=float(np.sqrt(sigma2)), theta=theta,
        reml_criterion=float(out["criterion"]), covariances=covariances,
        converged=bool(np.isfinite(out["criterion"]) and scaled < GRADIENT_TOLERANCE),
        singular=bool((diagonal < SINGULAR_TOLERANCE).any()),
        optimizer_message=f"{message}; max scaled gradient {scaled:.2e}{note}", n_obs=model.n,
        fixed_names=list(model.fixed_names), terms=model.terms, model=model,
        scaled_gradient=float(scaled), identifiable=identifiable, identifiability_note=identifiability,
        phi=np.array(phi, dtype=float))


def theta_derivatives(model: "NestedLmm", theta: np.ndarray, out: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian in theta of a quantity whose phi-derivatives are in ``out``
    (``name`` "" for the criterion, else ``out[name + "_d"]`` and ``out[name + "_h"]``)."""
    g, H = out[f"{name}_d"] if name else out["gradient"], out[f"{name}_h"] if name else out["hessian"]
    if not model.intercepts_only:
        return g, H
    # phi = theta^2: d/dtheta = 2 theta d/dphi; d2/dtheta2 = 4 theta theta' H + 2 diag(g).
    return 2.0 * theta * g, 4.0 * np.outer(theta, theta) * H + 2.0 * np.diag(g)


def scaled_gradient(model: "NestedLmm", phi: np.ndarray, out: dict) -> tuple[float, str]:
    """lme4's check.conv.grad: max over parameters of min(|H^-1/2 g|, |g|) in theta, with
    parameters held at their bound by the criterion rising inwards excluded."""
    theta = model._to_theta(phi)
    g, H = theta_derivatives(model, theta, out, "")
    free = free_parameters(model, phi, out["gradient"])
    if model.intercepts_only:
        free &= theta > 0
    if not free.any():
        return 0.0, ""
    g, H = g[free], H[np.ix_(free, free)]
    try:
        scaled = np.abs(linalg.solve_triangular(np.linalg.cholesky(H), g, lower=True))
        note = ""
    except np.linalg.LinAlgError:
        scaled, note = np.abs(g), "; Hessian not positive definite"
    return float(np.max(np.minimum(scaled, np.abs(g)))), note
