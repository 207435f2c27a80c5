"""Linear mixed models by REML for nested random effects, with Satterthwaite degrees of freedom.

The model is ``y = X beta + Z b + e`` with ``b ~ N(0, sigma^2 Lambda Lambda')`` and
``e ~ N(0, sigma^2 I)``, in the relative-covariance parametrisation of lme4 (Bates, Maechler,
Bolker & Walker, 2015, J. Stat. Softw. 67(1), sections 3.1-3.4): ``theta`` holds the elements of
the lower-triangular Cholesky factors of each random term's relative covariance, with the
diagonal elements bounded below by 0 (a variance component of exactly 0 is a valid, "singular",
optimum). The REML criterion is, with ``V_theta = I + Z Lambda Lambda' Z'``::

    d(theta) = log|V_theta| + log|X' V_theta^-1 X| + (n - p) (1 + log(2 pi r^2 / (n - p)))

where ``r^2`` is the generalised residual sum of squares; sigma^2 = r^2 / (n - p).

Every random term must be nested in the groups of the first term (e.g. institution, then
participant within institution), so ``V`` is block diagonal by those groups. The blocks are
padded to one size and processed as stacked arrays: the cost is linear in the number of groups,
without a Python loop over them.

statsmodels' MixedLM provides the starting values (see ``models.fit_primary``); this module
then minimises the criterion with box constraints from several starts, including the boundary,
because a quasi-Newton search from the interior can stop short of a zero variance component.

Satterthwaite's degrees of freedom for a contrast ``L beta`` follow lmerTest (Kuznetsova,
Brockhoff & Christensen, 2017, J. Stat. Softw. 82(13), section 3.2)::

    df = 2 (L C L')^2 / (g' A g)

with ``C = sigma^2 (X' V_theta^-1 X)^-1`` the covariance of beta-hat as a function of the
variance parameters ``(theta, sigma)``, ``g`` its gradient in those parameters and ``A = 2 H^-1``
the asymptotic covariance of the parameters, ``H`` the Hessian of the REML deviance (both by
central differences with Richardson extrapolation at the optimum).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

SINGULAR_TOLERANCE = 1e-4  # lme4's isSingular() tolerance on theta (relative SDs)
GRADIENT_TOLERANCE = 2e-3  # lme4's check.conv.grad tolerance


@dataclass(frozen=True)
class RandomTerm:
    """One random term: observations' levels of its grouping factor and its design columns
    (a column of ones for a random intercept; ones and a covariate for a random slope)."""

    name: str
    levels: np.ndarray
    design: np.ndarray
    columns: tuple[str, ...] = ("(Intercept)",)

    @property
    def q(self) -> int:
        return self.design.shape[1]

    @property
    def n_theta(self) -> int:
        return self.q * (self.q + 1) // 2


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

    @property
    def std_errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))


class NestedLmm:
    """Gaussian linear mixed model with random terms nested in the first term's groups."""

    def __init__(self, y: np.ndarray, X: np.ndarray, terms: list[RandomTerm],
                 fixed_names: list[str] | None = None):
        self.y = np.asarray(y, dtype=float)
        self.X = np.asarray(X, dtype=float)
        self.terms = terms
        self.n, self.p = self.X.shape
        self.fixed_names = fixed_names or [f"x{i}" for i in range(self.p)]
        if np.linalg.matrix_rank(self.X) < self.p:
            raise ValueError("the fixed-effects design is rank deficient; drop aliased columns first")
        self._layout()

    # ---------------------------------------------------------------- layout of the blocks

    def _layout(self) -> None:
        outer, outer_index = np.unique(self.terms[0].levels, return_inverse=True)
        self.groups = outer
        self.group_of_obs = outer_index
        G = len(outer)
        # Random-effect columns: for every term and level, q_k consecutive columns in its group.
        blocks = []  # (group, term, level code)
        level_codes = []
        for k, term in enumerate(self.terms):
            levels, codes = np.unique(term.levels, return_inverse=True)
            level_codes.append(codes)
            group_of_level = np.full(len(levels), -1)
            group_of_level[codes] = outer_index
            check = np.zeros(len(levels), dtype=bool)
            np.logical_or.at(check, codes, group_of_level[codes] != outer_index)
            if check.any():
                raise ValueError(f"random term '{term.name}' is not nested in '{self.terms[0].name}'")
            blocks.append(group_of_level)
        # Position of each (term, level) block within its group.
        offsets = np.zeros(G, dtype=int)
        block_start = []
        for k, term in enumerate(self.terms):
            group_of_level = blocks[k]
            order = np.argsort(group_of_level, kind="stable")
            start = np.empty(len(group_of_level), dtype=int)
            counts = np.bincount(group_of_level, minlength=G)
            rank_in_group = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
            start[order] = offsets[group_of_level[order]] + rank_in_group * term.q
            offsets += counts * term.q
            block_start.append(start)
        self.q_max = int(offsets.max())
        qm = self.q_max
        # Column descriptors per group: term, position within the term's block, block id.
        self.col_term = np.full((G, qm), -1)
        self.col_pos = np.zeros((G, qm), dtype=int)
        self.col_block = np.full((G, qm), -1)
        block_id = 0
        for k, term in enumerate(self.terms):
            group_of_level = blocks[k]
            for j in range(term.q):
                self.col_term[group_of_level, block_start[k] + j] = k
                self.col_pos[group_of_level, block_start[k] + j] = j
                self.col_block[group_of_level, block_start[k] + j] = block_id + np.arange(len(group_of_level))
            block_id += len(group_of_level)
        # Padded per-observation Z rows and per-group cross-products.
        Zobs = np.zeros((self.n, qm))
        for k, term in enumerate(self.terms):
            cols = block_start[k][level_codes[k]]
            for j in range(term.q):
                Zobs[np.arange(self.n), cols + j] = term.design[:, j]
        self.Zobs = Zobs
        g = outer_index
        self.ZtZ = np.zeros((G, qm, qm))
        np.add.at(self.ZtZ, g, Zobs[:, :, None] * Zobs[:, None, :])
        self.ZtX = np.zeros((G, qm, self.p))
        np.add.at(self.ZtX, g, Zobs[:, :, None] * self.X[:, None, :])
        self.Zty = np.zeros((G, qm))
        np.add.at(self.Zty, g, Zobs * self.y[:, None])
        self.XtX = self.X.T @ self.X
        self.Xty = self.X.T @ self.y
        self.yty = float(self.y @ self.y)
        self.same_block = (self.col_block[:, :, None] == self.col_block[:, None, :]) & (self.col_block[:, :, None] >= 0)
        # theta layout: per term, the lower triangle of its Cholesky factor, column by column.
        self.theta_slices, self.lower_bounds, start = [], [], 0
        for term in self.terms:
            rows, cols = np.tril_indices(term.q)
            order = np.lexsort((rows, cols))
            rows, cols = rows[order], cols[order]
            self.theta_slices.append((slice(start, start + term.n_theta), rows, cols))
            self.lower_bounds += [0.0 if r == c else -np.inf for r, c in zip(rows, cols)]
            start += term.n_theta
        self.n_theta = start
        self.q_term_max = max(term.q for term in self.terms)

    # ---------------------------------------------------------------- criterion

    def term_factors(self, theta: np.ndarray) -> np.ndarray:
        factors = np.zeros((len(self.terms), self.q_term_max, self.q_term_max))
        for k, (sl, rows, cols) in enumerate(self.theta_slices):
            factors[k, rows, cols] = theta[sl]
        return factors

    def _lambda(self, theta: np.ndarray) -> np.ndarray:
        factors = self.term_factors(theta)
        term = np.where(self.col_term >= 0, self.col_term, 0)
        lam = factors[term[:, :, None], self.col_pos[:, :, None], self.col_pos[:, None, :]]
        return np.where(self.same_block, lam, 0.0)

    def _solve_parts(self, theta: np.ndarray):
        lam = self._lambda(theta)
        lam_t = np.swapaxes(lam, 1, 2)
        M = lam_t @ self.ZtZ @ lam + np.eye(self.q_max)
        L = np.linalg.cholesky(M)
        A = np.linalg.solve(L, lam_t @ self.ZtX)                    # G x q x p
        b = np.linalg.solve(L, (lam_t @ self.Zty[:, :, None]))[..., 0]  # G x q
        XtVX = self.XtX - np.einsum("gqi,gqj->ij", A, A)
        XtVy = self.Xty - np.einsum("gqi,gq->i", A, b)
        ytVy = self.yty - float(np.einsum("gq,gq->", b, b))
        logdet_V = 2.0 * float(np.log(np.diagonal(L, axis1=1, axis2=2)).sum())
        return lam, L, XtVX, XtVy, ytVy, logdet_V

    def profiled_parts(self, theta: np.ndarray):
        lam, L, XtVX, XtVy, ytVy, logdet_V = self._solve_parts(theta)
        chol = np.linalg.cholesky(XtVX)
        beta = np.linalg.solve(XtVX, XtVy)
        r2 = ytVy - float(beta @ XtVy)
        logdet_X = 2.0 * float(np.log(np.diag(chol)).sum())
        return beta, r2, logdet_V, logdet_X, XtVX

    def reml_criterion(self, theta: np.ndarray) -> float:
        """-2 x REML log-likelihood with sigma profiled out (lme4's "REML criterion")."""
        try:
            _, r2, logdet_V, logdet_X, _ = self.profiled_parts(np.asarray(theta, dtype=float))
        except np.linalg.LinAlgError:
            return np.inf
        dof = self.n - self.p
        return logdet_V + logdet_X + dof * (1.0 + np.log(2.0 * np.pi * r2 / dof))

    def deviance_varpar(self, varpar: np.ndarray) -> float:
        """REML deviance as a function of (theta, sigma), sigma not profiled (for Satterthwaite)."""
        theta, sigma = varpar[:-1], varpar[-1]
        _, r2, logdet_V, logdet_X, _ = self.profiled_parts(theta)
        dof = self.n - self.p
        return logdet_V + logdet_X + dof * np.log(2.0 * np.pi * sigma**2) + r2 / sigma**2

    def vcov_varpar(self, varpar: np.ndarray) -> np.ndarray:
        theta, sigma = varpar[:-1], varpar[-1]
        *_, XtVX = self.profiled_parts(theta)
        return sigma**2 * np.linalg.inv(XtVX)

    # ---------------------------------------------------------------- fitting

    def default_starts(self) -> list[np.ndarray]:
        """lme4's start (identity factors), the same with each term at the boundary, and all
        terms at the boundary."""
        base = np.array([1.0 if lb == 0.0 else 0.0 for lb in self.lower_bounds])
        starts = [base]
        for sl, _, _ in self.theta_slices:
            start = base.copy()
            start[sl] = 0.0
            starts.append(start)
        starts.append(np.zeros(self.n_theta))
        return starts

    def fit(self, starts: list[np.ndarray] | None = None) -> LmmFit:
        bounds = [(lb if np.isfinite(lb) else None, None) for lb in self.lower_bounds]
        candidates = []
        for start in [*(starts or []), *self.default_starts()]:
            start = np.maximum(np.asarray(start, dtype=float), np.array(self.lower_bounds))
            candidates.append(optimize.minimize(self.reml_criterion, start, method="L-BFGS-B",
                                                jac="3-point", bounds=bounds,
                                                options={"maxiter": 20000}))
            candidates.append(optimize.minimize(self.reml_criterion, start, method="Powell",
                                                bounds=bounds, options={"maxiter": 20000}))
        # Polish the best candidate once more; keep whichever criterion is lowest.
        best = min(candidates, key=lambda r: r.fun)
        polish = optimize.minimize(self.reml_criterion, best.x, method="L-BFGS-B", jac="3-point",
                                   bounds=bounds, options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 20000})
        if polish.fun <= best.fun:
            best = polish
        theta = np.asarray(best.x, dtype=float)
        # Snap numerically-zero diagonal elements to the boundary, as lme4 reports them.
        for index, lb in enumerate(self.lower_bounds):
            if lb == 0.0 and theta[index] < SINGULAR_TOLERANCE:
                trial = theta.copy()
                trial[index] = 0.0
                current = self.reml_criterion(theta)
                if self.reml_criterion(trial) <= current + 1e-10 * abs(current):
                    theta = trial
        beta, r2, _, _, XtVX = self.profiled_parts(theta)
        sigma2 = r2 / (self.n - self.p)
        factors = self.term_factors(theta)
        covariances = {term.name: sigma2 * (factors[k, :term.q, :term.q] @ factors[k, :term.q, :term.q].T)
                       for k, term in enumerate(self.terms)}
        diagonal = np.array([theta[i] for i, lb in enumerate(self.lower_bounds) if lb == 0.0])
        gradient = self.projected_gradient(theta)
        return LmmFit(
            beta=beta, vcov=sigma2 * np.linalg.inv(XtVX), sigma=float(np.sqrt(sigma2)), theta=theta,
            reml_criterion=float(self.reml_criterion(theta)), covariances=covariances,
            converged=bool(np.isfinite(best.fun) and np.max(np.abs(gradient), initial=0.0) < GRADIENT_TOLERANCE),
            singular=bool((diagonal < SINGULAR_TOLERANCE).any()),
            optimizer_message=f"{best.message}; max |projected gradient| {np.max(np.abs(gradient), initial=0.0):.2e}", n_obs=self.n, fixed_names=list(self.fixed_names),
            terms=self.terms, model=self)

    def projected_gradient(self, theta: np.ndarray) -> np.ndarray:
        """Gradient of the criterion (central differences), zeroed where a parameter sits on
        its bound and the criterion increases into the feasible side: a KKT point has none."""
        # Steps of 1e-4: the criterion is computed to ~1e-10, so smaller steps measure noise.
        step = 1e-4
        gradient = np.zeros_like(theta)
        f0 = self.reml_criterion(theta)
        for i, lb in enumerate(self.lower_bounds):
            e = np.zeros_like(theta)
            e[i] = step
            if lb == 0.0 and theta[i] <= 1e-8:
                # At the bound: the one-sided derivative into the feasible region matters.
                gradient[i] = min((self.reml_criterion(theta + e) - f0) / step, 0.0)
            else:
                gradient[i] = (self.reml_criterion(theta + e) - self.reml_criterion(theta - e)) / (2 * step)
        return gradient

    # ---------------------------------------------------------------- inference

    def satterthwaite(self, fit: LmmFit, contrasts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Satterthwaite degrees of freedom and standard errors for each row of ``contrasts``."""
        varpar = np.append(fit.theta, fit.sigma)
        hessian = numerical_hessian(self.deviance_varpar, varpar)
        cov_varpar = 2.0 * np.linalg.pinv(hessian)
        jac = numerical_jacobian(self.vcov_varpar, varpar)          # k x p x p
        contrasts = np.atleast_2d(contrasts)
        dfs, ses = [], []
        for L in contrasts:
            variance = float(L @ fit.vcov @ L)
            gradient = np.einsum("i,kij,j->k", L, jac, L)
            denominator = float(gradient @ cov_varpar @ gradient)
            dfs.append(2.0 * variance**2 / denominator if denominator > 0 else np.inf)
            ses.append(np.sqrt(variance))
        return np.array(dfs), np.array(ses)

    def conditional_modes(self, fit: LmmFit) -> np.ndarray:
        """Random effects b = Lambda u, u = M^-1 Lambda' Z'(y - X beta); G x q_max (padded)."""
        lam, L, *_ = self._solve_parts(fit.theta)
        lam_t = np.swapaxes(lam, 1, 2)
        resid_zt = self.Zty - np.einsum("gqp,p->gq", self.ZtX, fit.beta)
        rhs = (lam_t @ resid_zt[:, :, None])[..., 0]
        u = np.linalg.solve(np.swapaxes(L, 1, 2), np.linalg.solve(L, rhs[:, :, None]))[..., 0]
        return (lam @ u[:, :, None])[..., 0]

    def residuals(self, fit: LmmFit) -> np.ndarray:
        b = self.conditional_modes(fit)
        return self.y - self.X @ fit.beta - (self.Zobs * b[self.group_of_obs]).sum(axis=1)


def _steps(x: np.ndarray) -> np.ndarray:
    """numDeriv's default initial steps: 10% of the value, 1e-4 where it is zero."""
    return np.where(np.abs(x) < 1e-5, 1e-4, 0.1 * np.abs(x))


def _richardson(estimate, levels: int = 4):
    """Richardson extrapolation of a central-difference estimate ``estimate(scale)`` whose error
    is a series in even powers of the step (as numDeriv does for lmerTest's derivatives)."""
    table = [estimate(0.5**i) for i in range(levels)]
    for j in range(1, levels):
        factor = 4.0**j
        table = [(factor * table[i + 1] - table[i]) / (factor - 1) for i in range(len(table) - 1)]
    return table[0]


def numerical_hessian(function, x: np.ndarray) -> np.ndarray:
    """Hessian by central differences with Richardson extrapolation."""
    x = np.asarray(x, dtype=float)
    k = len(x)

    def at_scale(scale: float) -> np.ndarray:
        h = _steps(x) * scale
        f0 = function(x)
        hessian = np.zeros((k, k))
        for i in range(k):
            ei = np.zeros(k)
            ei[i] = h[i]
            hessian[i, i] = (function(x + ei) - 2 * f0 + function(x - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(k)
                ej[j] = h[j]
                value = (function(x + ei + ej) - function(x + ei - ej) - function(x - ei + ej)
                         + function(x - ei - ej)) / (4 * h[i] * h[j])
                hessian[i, j] = hessian[j, i] = value
        return hessian

    return _richardson(at_scale)


def numerical_jacobian(function, x: np.ndarray) -> np.ndarray:
    """Derivatives of a matrix-valued function, shape (len(x),) + f.shape, by central
    differences with Richardson extrapolation."""
    x = np.asarray(x, dtype=float)

    def at_scale(scale: float) -> np.ndarray:
        h = _steps(x) * scale
        parts = []
        for i in range(len(x)):
            e = np.zeros(len(x))
            e[i] = h[i]
            parts.append((function(x + e) - function(x - e)) / (2 * h[i]))
        return np.stack(parts)

    return _richardson(at_scale)


def t_inference(estimate: np.ndarray, se: np.ndarray, df: np.ndarray, level: float = 0.95):
    """t statistics, two-sided p-values and confidence limits with the given df."""
    statistic = estimate / se
    p_value = 2 * stats.t.sf(np.abs(statistic), df)
    quantile = stats.t.ppf(0.5 + level / 2, df)
    return statistic, p_value, estimate - quantile * se, estimate + quantile * se
