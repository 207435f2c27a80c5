"""Confirmatory factor analysis with a mean structure, fitted by maximum likelihood.

The model (LISREL all-y notation, as lavaan's "cfa" with ``meanstructure = TRUE``) is

    Sigma = Lambda Psi Lambda' + Theta,        mu = nu + Lambda alpha,

with p observed variables and m factors. Its parameters are laid out as in lavaan's parameter
table: each cell of each model matrix is either fixed (at the value in ``CfaModel.fixed``) or
equal to one free parameter (its index in ``CfaModel.free``); cells sharing an index are
constrained equal. The ML discrepancy of complete data with sample mean ``m`` and covariance
``S`` (divided by N, lavaan's ``likelihood = "normal"``) is

    F = log|Sigma| + tr(S Sigma^-1) - log|S| - p + (m - mu)' Sigma^-1 (m - mu),

minimised with its exact gradient; the test statistic is chi2 = N F_min (lavaan's "standard"
test of ``estimator = "ML"``). The fit indices follow lavaan's ``fitMeasures``: CFI and TLI
against the independence model (free means and variances), RMSEA with its 90% interval by
inverting the noncentral chi-square (lav_fit_rmsea_ci), and Bentler's SRMR including the means.
The robust variant is the Satorra-Bentler scaled statistic (lavaan's ``estimator = "MLM"``): the
same estimates, chi2 divided by c = tr(U Gamma) / df, with Gamma the asymptotic covariance of the
sample means and covariances (fourth moments, divided by N), U = W - W Delta (Delta' W Delta)^-1
Delta' W, W the normal-theory weight at the implied moments and Delta their Jacobian; nested
models are compared by the Satorra-Bentler (2001) scaled difference.
Reference: Bollen (1989), Structural Equations with Latent Variables, ch. 4 and 7; Satorra &
Bentler (1994, 2001); Rosseel (2012), lavaan, J. Stat. Softw. 48(2).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import optimize, stats

MATRICES = ("lambda", "psi", "theta", "nu", "alpha")
# Largest absolute gradient of F accepted as a stationary point (F is O(1) per observation).
GRADIENT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class CfaModel:
    """Free-parameter layout: ``free[name]`` holds, per cell of the model matrix ``name``
    (lambda p x m, psi m x m, theta p x p, nu p, alpha m), the index of the free parameter the
    cell equals, or -1 where the cell is fixed at ``fixed[name]``. Symmetric matrices list a
    covariance in both of its cells."""

    free: dict
    fixed: dict

    @property
    def n_params(self) -> int:
        return int(max(self.free[name].max() for name in MATRICES)) + 1

    @property
    def n_observed(self) -> int:
        return self.free["lambda"].shape[0]

    def degrees_of_freedom(self) -> int:
        """Sample moments (p means, p(p+1)/2 covariances) minus free parameters."""
        p = self.n_observed
        return p * (p + 3) // 2 - self.n_params

    def matrices(self, params: np.ndarray) -> dict[str, np.ndarray]:
        result = {}
        for name in MATRICES:
            matrix = np.array(self.fixed[name], dtype=float)
            free = self.free[name]
            mask = free >= 0
            matrix[mask] = params[free[mask]]
            result[name] = matrix
        return result


def vech_indices(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the lower triangle, column by column (lavaan's vech order)."""
    cols, rows = np.triu_indices(p)
    return rows, cols


@dataclass(frozen=True)
class Moments:
    """Complete-data sample moments: mean and covariance divided by N (ML), and Gamma, the
    asymptotic covariance of (mean, vech(cov)) from the fourth moments (divided by N, lavaan's
    NACOV of complete data)."""

    mean: np.ndarray
    cov: np.ndarray
    n: int
    gamma: np.ndarray

    @classmethod
    def of(cls, data: np.ndarray) -> "Moments":
        data = np.asarray(data, dtype=float)
        n = data.shape[0]
        mean = data.mean(axis=0)
        centred = data - mean
        cov = centred.T @ centred / n
        rows, cols = vech_indices(data.shape[1])
        deviations = np.hstack([centred, centred[:, rows] * centred[:, cols] - cov[rows, cols]])
        return cls(mean, cov, n, deviations.T @ deviations / n)


@dataclass(frozen=True)
class CfaFit:
    """A fitted model: ``converged`` says whether the optimiser reached a stationary point with
    a positive definite implied covariance; ``proper`` whether the variances are positive and
    the factor covariance matrix is positive definite (no Heywood case)."""

    model: CfaModel
    moments: Moments
    params: np.ndarray
    discrepancy: float
    converged: bool
    proper: bool
    message: str

    @property
    def chisq(self) -> float:
        return self.moments.n * self.discrepancy

    @property
    def df(self) -> int:
        return self.model.degrees_of_freedom()

    def implied(self) -> tuple[np.ndarray, np.ndarray]:
        return implied_moments(self.model.matrices(self.params))

    @cached_property
    def scaling_factor(self) -> float:
        """Satorra-Bentler c = tr(U Gamma) / df (module docstring)."""
        if self.df <= 0:
            return np.nan
        sigma, _ = self.implied()
        weight = normal_weight(sigma)
        delta = moment_jacobian(self.model, self.params)
        u = weight - weight @ delta @ np.linalg.solve(delta.T @ weight @ delta, delta.T @ weight)
        return float(np.trace(u @ self.moments.gamma) / self.df)

    def standardised_loadings(self) -> np.ndarray:
        """lavaan's std.all: lambda_ij sqrt(psi_jj) / sqrt(sigma_ii)."""
        mats = self.model.matrices(self.params)
        sigma, _ = implied_moments(mats)
        return mats["lambda"] * np.sqrt(np.diag(mats["psi"]))[None, :] / np.sqrt(np.diag(sigma))[:, None]


def implied_moments(mats: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lam = mats["lambda"]
    return lam @ mats["psi"] @ lam.T + mats["theta"], mats["nu"] + lam @ mats["alpha"]


def implied_vector(model: CfaModel, params: np.ndarray) -> np.ndarray:
    """(mu, vech Sigma) of the model at ``params``."""
    sigma, mu = implied_moments(model.matrices(params))
    rows, cols = vech_indices(sigma.shape[0])
    return np.concatenate([mu, sigma[rows, cols]])


def moment_jacobian(model: CfaModel, params: np.ndarray) -> np.ndarray:
    """Delta = d(mu, vech Sigma) / d params, by central differences (the moments are
    polynomials of degree 3 in the parameters: the error is of order h^2)."""
    columns = []
    for index in range(params.size):
        h = 1e-5 * max(1.0, abs(params[index]))
        up, down = params.copy(), params.copy()
        up[index] += h
        down[index] -= h
        columns.append((implied_vector(model, up) - implied_vector(model, down)) / (2 * h))
    return np.column_stack(columns)


def normal_weight(sigma: np.ndarray) -> np.ndarray:
    """The normal-theory weight of (mean, vech cov): blockdiag(Sigma^-1, D' (Sigma^-1 x
    Sigma^-1) D / 2), D the duplication matrix."""
    p = sigma.shape[0]
    rows, cols = vech_indices(p)
    inverse = np.linalg.inv(sigma)
    # D' (A x A) D / 2 element by element, for vech pairs (i,j), (k,l): a_ik a_jl + a_il a_jk,
    # halved for each of the two that is a diagonal element (D lists it once, not twice).
    block = (inverse[np.ix_(rows, rows)] * inverse[np.ix_(cols, cols)]
             + inverse[np.ix_(rows, cols)] * inverse[np.ix_(cols, rows)])
    half = np.where(rows == cols, 0.5, 1.0)
    block *= half[:, None] * half[None, :]
    weight = np.zeros((p + rows.size, p + rows.size))
    weight[:p, :p] = inverse
    weight[p:, p:] = block
    return weight


def discrepancy_and_gradient(params: np.ndarray, model: CfaModel,
                             moments: Moments) -> tuple[float, np.ndarray]:
    """F (module docstring) and its exact gradient: with W = Sigma^-1 - Sigma^-1 (S + d d')
    Sigma^-1 and g = -2 Sigma^-1 d (d = m - mu), dF/dLambda = 2 W Lambda Psi + g alpha',
    dF/dPsi = Lambda' W Lambda, dF/dTheta = W, dF/dnu = g, dF/dalpha = Lambda' g, summed over
    the cells that share a parameter."""
    mats = model.matrices(params)
    sigma, mu = implied_moments(mats)
    try:
        chol = np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        return np.inf, np.zeros_like(params)
    sigma_inv = np.linalg.inv(sigma)
    d = moments.mean - mu
    sample_logdet = np.linalg.slogdet(moments.cov)[1]
    value = (2 * np.log(np.diag(chol)).sum() + np.trace(moments.cov @ sigma_inv) - sample_logdet
             - sigma.shape[0] + d @ sigma_inv @ d)
    w = sigma_inv - sigma_inv @ (moments.cov + np.outer(d, d)) @ sigma_inv
    g = -2 * sigma_inv @ d
    lam, psi, alpha = mats["lambda"], mats["psi"], mats["alpha"]
    cell_gradients = {"lambda": 2 * w @ lam @ psi + np.outer(g, alpha), "psi": lam.T @ w @ lam,
                      "theta": w, "nu": g, "alpha": lam.T @ g}
    gradient = np.zeros(model.n_params)
    for name, cells in cell_gradients.items():
        free = model.free[name]
        mask = free >= 0
        gradient += np.bincount(free[mask], weights=cells[mask], minlength=model.n_params)
    return float(value), gradient


def start_values(model: CfaModel, moments: Moments) -> np.ndarray:
    """Loadings 1, factor variances half the smallest observed variance, residual variances
    half the observed ones, intercepts the observed means, everything else 0."""
    start = np.zeros(model.n_params)
    variances = np.diag(moments.cov)
    guesses = {"lambda": np.ones(model.free["lambda"].shape),
               "psi": np.eye(model.free["psi"].shape[0]) * 0.5 * variances.min(),
               "theta": np.diag(0.5 * variances), "nu": moments.mean,
               "alpha": np.zeros(model.free["alpha"].shape)}
    for name, guess in guesses.items():
        free = model.free[name]
        mask = free >= 0
        start[free[mask]] = guess[mask]
    return start


def fit_ml(model: CfaModel, data: np.ndarray, start: np.ndarray | None = None) -> CfaFit:
    """ML fit by BFGS with the exact gradient, then Newton steps on a Hessian from central
    differences of the gradient, so that F_min is accurate to rounding (lavaan's nlminb stops at
    a relative change of 1e-10)."""
    moments = Moments.of(data)
    x0 = start_values(model, moments) if start is None else start
    if np.linalg.eigvalsh(moments.cov).min() <= 1e-10 * np.abs(moments.cov).max():
        return CfaFit(model, moments, x0, np.nan, False, False,
                      "the sample covariance matrix is singular")
    result = optimize.minimize(discrepancy_and_gradient, x0, args=(model, moments), jac=True,
                               method="BFGS", options={"gtol": 1e-9, "maxiter": 5000})
    params = _newton_polish(result.x, model, moments)
    value, gradient = discrepancy_and_gradient(params, model, moments)
    converged = bool(np.isfinite(value) and np.abs(gradient).max() < GRADIENT_TOLERANCE)
    message = "converged" if converged else f"no stationary point ({result.message})"
    return CfaFit(model, moments, params, value, converged, _is_proper(model, params), message)


def _newton_polish(params: np.ndarray, model: CfaModel, moments: Moments,
                   steps: int = 3) -> np.ndarray:
    value, gradient = discrepancy_and_gradient(params, model, moments)
    for _ in range(steps):
        if not np.isfinite(value) or np.abs(gradient).max() < 1e-12:
            break
        hessian = _numerical_hessian(params, model, moments)
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            break
        candidate = params - step
        new_value, new_gradient = discrepancy_and_gradient(candidate, model, moments)
        if not np.isfinite(new_value) or new_value > value + 1e-12:
            break
        params, value, gradient = candidate, new_value, new_gradient
    return params


def _numerical_hessian(params: np.ndarray, model: CfaModel, moments: Moments) -> np.ndarray:
    size = params.size
    hessian = np.empty((size, size))
    for index in range(size):
        h = 1e-6 * max(1.0, abs(params[index]))
        up, down = params.copy(), params.copy()
        up[index] += h
        down[index] -= h
        hessian[index] = (discrepancy_and_gradient(up, model, moments)[1]
                          - discrepancy_and_gradient(down, model, moments)[1]) / (2 * h)
    return (hessian + hessian.T) / 2


def _is_proper(model: CfaModel, params: np.ndarray) -> bool:
    mats = model.matrices(params)
    residual_ok = bool(np.all(np.diag(mats["theta"]) > 0))
    try:
        np.linalg.cholesky(mats["psi"])
    except np.linalg.LinAlgError:
        return False
    return residual_ok


def independence_chisq(moments: Moments) -> tuple[float, int]:
    """The baseline model of CFI and TLI (free means and variances, no covariances):
    chi2_b = N (sum log s_ii - log|S|), df_b = p(p-1)/2."""
    p = moments.cov.shape[0]
    chisq = moments.n * (np.log(np.diag(moments.cov)).sum() - np.linalg.slogdet(moments.cov)[1])
    return float(chisq), p * (p - 1) // 2


def rmsea(chisq: float, df: int, n: int) -> float:
    """sqrt(max(chi2 / (N df) - 1 / N, 0)) (lavaan's lav_fit_rmsea, N not N - 1)."""
    return float(np.sqrt(max(chisq / (n * df) - 1 / n, 0.0))) if df > 0 else 0.0


def rmsea_interval(chisq: float, df: int, n: int, level: float = 0.90) -> tuple[float, float]:
    """The noncentrality lambda with P(chi2_df(lambda) <= X2) at (1 + level)/2 and (1 - level)/2,
    as sqrt(lambda / (N df)) (Browne & Cudeck 1993; lavaan's lav_fit_rmsea_ci)."""
    upper_p, lower_p = 0.5 + level / 2, 0.5 - level / 2

    def cdf(ncp: float) -> float:
        return stats.chi2.cdf(chisq, df) if ncp <= 0 else stats.ncx2.cdf(chisq, df, ncp)

    def bound(target: float) -> float:
        if df < 1 or cdf(0.0) < target:
            return 0.0
        high = max(n, 4 * chisq)
        while cdf(high) > target:
            high *= 2
        ncp = optimize.brentq(lambda value: cdf(value) - target, 0.0, high, xtol=1e-12, rtol=1e-14)
        return float(np.sqrt(ncp / (n * df)))

    return bound(upper_p), bound(lower_p)


def srmr(fit: CfaFit) -> float:
    """Bentler's SRMR with the means (lavaan's "srmr" with a mean structure): the root mean square
    of (s_ij - sigma_ij) / sqrt(s_ii s_jj) over the p(p+1)/2 covariances and of
    (m_i - mu_i) / sqrt(s_ii) over the p means."""
    sigma, mu = fit.implied()
    s = fit.moments.cov
    scale = np.sqrt(np.diag(s))
    residual = (s - sigma) / np.outer(scale, scale)
    lower = residual[np.tril_indices_from(residual)]
    means = (fit.moments.mean - mu) / scale
    return float(np.sqrt((np.sum(lower**2) + np.sum(means**2)) / (lower.size + means.size)))


def fit_measures(fit: CfaFit) -> dict[str, float]:
    """chi-square, df, p, CFI, TLI, RMSEA with its 90% interval and SRMR (lavaan's formulas)."""
    chisq, df, n = fit.chisq, fit.df, fit.moments.n
    base_chisq, base_df = independence_chisq(fit.moments)
    cfi_denominator = max(chisq - df, base_chisq - base_df, 0.0)
    low, high = rmsea_interval(chisq, df, n)
    return {
        "chisq": chisq, "df": df,
        "p_value": float(stats.chi2.sf(chisq, df)) if df > 0 else np.nan,
        "cfi": 1.0 - max(chisq - df, 0.0) / cfi_denominator if cfi_denominator > 0 else 1.0,
        "tli": ((base_chisq / base_df - chisq / df) / (base_chisq / base_df - 1.0)) if df > 0 else 1.0,
        "rmsea": rmsea(chisq, df, n), "rmsea_low": low, "rmsea_high": high, "srmr": srmr(fit),
    }


def scaled_test(fit: CfaFit) -> dict[str, float]:
    """The Satorra-Bentler scaled chi-square (lavaan's chisq.scaled of estimator "MLM")."""
    scaled = fit.chisq / fit.scaling_factor
    return {"scaling_factor": fit.scaling_factor, "chisq_scaled": scaled,
            "p_value_scaled": float(stats.chi2.sf(scaled, fit.df))}


def likelihood_ratio_test(restricted: CfaFit, general: CfaFit) -> dict[str, float]:
    """Chi-square difference of nested ML fits (lavaan's lavTestLRT, method "standard"), and the
    Satorra-Bentler (2001) scaled difference: (T0 - T1) / ((df0 c0 - df1 c1) / (df0 - df1))."""
    difference = restricted.chisq - general.chisq
    df = restricted.df - general.df
    scale = (restricted.df * restricted.scaling_factor - general.df * general.scaling_factor) / df
    scaled = difference / scale
    return {"lr_chisq": difference, "lr_df": df, "lr_p_value": float(stats.chi2.sf(difference, df)),
            "lr_chisq_scaled": scaled, "lr_p_value_scaled": float(stats.chi2.sf(scaled, df))}
