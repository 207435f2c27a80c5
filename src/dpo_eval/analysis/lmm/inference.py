"""Inference from a REML fit: Satterthwaite's degrees of freedom, conditional modes and
conditional residuals, t statistics.

Satterthwaite's degrees of freedom for a contrast ``L beta`` follow lmerTest (Kuznetsova,
Brockhoff & Christensen, 2017, J. Stat. Softw. 82(13), section 3.2)::

    df = 2 (L C L')^2 / (g' A g)

with ``C = sigma^2 (X' V^-1 X)^-1`` the covariance of beta-hat as a function of the variance
parameters ``(theta, sigma)``, ``g`` its (exact) gradient, ``A = 2 H^+`` with ``H`` the exact
Hessian of the REML deviance ``log|V| + log|X'V^-1 X| + (n - p) log(2 pi sigma^2) + r^2/sigma^2``.
``H^+`` inverts only the eigenvalues above lmerTest's cutoff (1e-8, ``as_lmerModLT``'s ``tol``):
on a design whose variance components are not identifiable (one participant per institution)
the Hessian has an exact zero eigenvalue, which rounding turns into a tiny positive one that a
plain pseudo-inverse would invert.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dpo_eval.analysis.lmm.optimisation import LmmFit, theta_derivatives

if TYPE_CHECKING:
    from dpo_eval.analysis.lmm.model import NestedLmm

EIGENVALUE_TOLERANCE = 1e-8  # lmerTest's tol: Hessian eigenvalues at or below it are taken as 0


def positive_part_inverse(hessian: np.ndarray, tolerance: float = EIGENVALUE_TOLERANCE) -> np.ndarray:
    """The inverse of a symmetric matrix on the span of its eigenvectors with eigenvalue above
    ``tolerance``, zero on the rest (lmerTest's ``vcov_varpar / 2``).

    Where every eigenvalue passes, that is the inverse itself, computed by a solve: the Hessian
    is graded (sigma's entry is 1e12 times theta's on the tiny-residual design), and inverting
    it through its eigenvectors would lose 5e-5 relative in the df there. Otherwise the inverse
    of the Hessian compressed to the kept eigenvectors Q: ``Q (Q'HQ)^-1 Q'``."""
    values, vectors = np.linalg.eigh(hessian)
    keep = values > tolerance
    if keep.all():
        return np.linalg.solve(hessian, np.eye(len(hessian)))
    basis = vectors[:, keep]
    return basis @ np.linalg.solve(basis.T @ hessian @ basis, basis.T)


def varpar_derivatives(model: "NestedLmm", fit: LmmFit) -> tuple[np.ndarray, np.ndarray]:
    """Exact Hessian of the REML deviance in (theta, sigma) and the derivatives of
    C = sigma^2 (X'V^-1 X)^-1 in (theta, sigma), shape (k + 1, p, p)."""
    theta, sigma = fit.theta, fit.sigma
    out = model._evaluate(fit.phi if fit.phi is not None else model._to_phi(theta), 2)
    dof = model.n - model.p
    parts = {"ld_d": out["logdet_v_d"] + out["logdet_x_d"], "ld_h": out["logdet_v_h"] + out["logdet_x_h"]}
    ld_g, ld_H = theta_derivatives(model, theta, parts, "ld")
    r2_g, r2_H = theta_derivatives(model, theta, out, "r2")
    r2 = out["r2"]
    k = len(theta)
    H = np.zeros((k + 1, k + 1))
    H[:k, :k] = ld_H + r2_H / sigma**2
    H[:k, k] = H[k, :k] = -2.0 * r2_g / sigma**3
    H[k, k] = -2.0 * dof / sigma**2 + 6.0 * r2 / sigma**4
    Ginv = out["Ginv"]
    G_d = out["G_d"] * (2.0 * theta)[:, None, None] if model.intercepts_only else out["G_d"]
    jac = np.concatenate([-sigma**2 * (Ginv @ G_d @ Ginv), (2.0 * sigma * Ginv)[None]])
    return H, jac


def satterthwaite(model: "NestedLmm", fit: LmmFit, contrasts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Satterthwaite degrees of freedom and standard errors for each row of ``contrasts``."""
    hessian, jac = varpar_derivatives(model, fit)
    cov_varpar = 2.0 * positive_part_inverse(hessian)
    contrasts = np.atleast_2d(contrasts)
    variance = np.einsum("ci,ij,cj->c", contrasts, fit.vcov, contrasts)
    gradient = np.einsum("ci,kij,cj->ck", contrasts, jac, contrasts)
    denominator = np.einsum("ck,kl,cl->c", gradient, cov_varpar, gradient)
    positive = denominator > 0
    dfs = np.full(len(contrasts), np.inf)
    dfs[positive] = 2.0 * variance[positive] ** 2 / denominator[positive]
    return dfs, np.sqrt(variance)


def random_effects(model: "NestedLmm", fit: LmmFit) -> dict[str, np.ndarray]:
    """Conditional modes b = Lambda Lambda' Z' V^-1 (y - X beta) per term: levels x q."""
    residual = (model.y - model.X @ fit.beta)[model.order]
    if not model.intercepts_only:
        lam = model.term_factors(fit.theta)[0]
        ztr = np.add.reduceat(model.Zs * residual[:, None], model.group_starts, axis=0)
        M = lam.T @ model.ZtZ @ lam + np.eye(lam.shape[0])
        u = np.linalg.solve(M, (lam.T @ ztr[:, :, None]))[..., 0]
        return {model.terms[0].name: u @ lam.T}
    vinv_means = model._vinv_group_parts(fit.theta, residual)
    weighted = model.group_sizes * vinv_means
    effects = {}
    for k, term in enumerate(model.terms):
        sums = np.add.reduceat(weighted, model.level_starts[k])
        effects[term.name] = (fit.theta[k] ** 2 * sums)[:, None]
    return effects


def residuals(model: "NestedLmm", fit: LmmFit) -> np.ndarray:
    """Conditional residuals y - X beta - Z b (= V^-1 (y - X beta) in relative scale)."""
    residual = (model.y - model.X @ fit.beta)[model.order]
    if model.intercepts_only:
        means = np.add.reduceat(residual, model.group_starts) / model.group_sizes
        parts = model._vinv_group_parts(fit.theta, residual)
        sorted_out = residual - means[model.group_of_row] + parts[model.group_of_row]
    else:
        b = random_effects(model, fit)[model.terms[0].name]
        sorted_out = residual - np.einsum("nq,nq->n", model.Zs, b[model.group_of_row])
    out = np.empty(model.n)
    out[model.order] = sorted_out
    return out


def t_inference(estimate: np.ndarray, se: np.ndarray, df: np.ndarray, level: float = 0.95):
    """t statistics, two-sided p-values and confidence limits with the given df."""
    from scipy import stats  # imported where used: fitting alone does not need scipy.stats

    statistic = estimate / se
    p_value = 2 * stats.t.sf(np.abs(statistic), df)
    quantile = stats.t.ppf(0.5 + level / 2, df)
    return statistic, p_value, estimate - quantile * se, estimate + quantile * se
