"""Linear mixed models by REML for nested random effects, with Satterthwaite degrees of freedom.

Model and criterion
-------------------
``y = X beta + Z b + e`` with ``b ~ N(0, sigma^2 Lambda Lambda')`` and ``e ~ N(0, sigma^2 I)``, in
the relative-covariance parametrisation of lme4 (Bates, Maechler, Bolker & Walker, 2015, J. Stat.
Softw. 67(1), section 3): ``theta`` holds the lower-triangular Cholesky factor of each random
term's relative covariance, diagonal elements bounded below by 0 (a variance component of exactly
0 is a valid, "singular", optimum). With ``V = I + Z Lambda Lambda' Z'`` the profiled REML
criterion (lme4's ``REMLcrit``, Bates et al. 2015, eq. 42) is::

    d(theta) = log|V| + log|X' V^-1 X| + (n - p) (1 + log(2 pi r^2 / (n - p)))

with ``r^2 = min_beta (y - X beta)' V^-1 (y - X beta)`` and ``sigma^2 = r^2 / (n - p)``.

Exact whitening instead of cross-product differences
-----------------------------------------------------
Everything is computed from an explicit whitening ``W`` with ``W'W = V^-1``: ``X'V^-1 X`` is the
Gram matrix of the whitened rows ``WX`` (a sum of squares, Cholesky-factored for
``log|X'V^-1 X|``), and ``r^2`` is the sum of squares of the explicit whitened residuals
``Wy - WX beta`` with beta refined iteratively (semi-normal equations; Bjorck 1996, Numerical
Methods for Least Squares Problems, section 2.9). No large cross-products are ever subtracted
(never ``X'X - A'A`` or ``y'y - b'b``), so the criterion keeps its precision when the residual
variance is tiny relative to the outcome's level (tests/test_lmm.py checks it against a 40-digit
computation).

*Nested random intercepts* (any depth; e.g. institution / participant / domain). A random
intercept of a group with (already whitened) indicator vector ``z`` adds ``a z z'`` to ``V``
(``a = theta^2``); its symmetric inverse square root is the rank-one correction::

    (I + a z z')^(-1/2) x = x - z h (z'x),   h = a / (q (q + 1)),   q = sqrt(1 + a z'z)

and ``log|I + a z z'| = log(1 + a z'z)``. Applying it level by level, deepest first (the
whitened indicator of a parent group is the child's indicator divided by the child's ``q``), gives
``W`` and ``log|V|`` exactly (nested Woodbury identities). Every correction is constant within a
deepest-level group, so ``W [X y]`` is the within-group deviations (independent of ``theta``;
their QR is computed once) plus one row per deepest group (the weighted, whitened group means):
one evaluation costs a few passes over the deepest groups, linear in the data and independent of
the size of the largest group, without a Python loop over groups.

*One random term with several columns* (random slopes, e.g. ``(Days | Subject)``; groups
independent). With ``B_g = Z_g Lambda`` and ``M_g = I + B_g' B_g`` (q x q per group, batched),
the map ``x -> [x - B M^-1 B' x ; M^-1 B' x]`` (one extra row per random effect, as in the
penalised least-squares system of Bates et al. 2015, eq. 14) is an isometry for ``V^-1``
(Woodbury), and ``log|V| = sum_g log|M_g|``.

Derivatives
-----------
Gradient and Hessian of the criterion are exact: the whitening is evaluated with second-order
forward-mode automatic differentiation (``Jet``: value, gradient, Hessian of every array), and
the derivatives of ``log|X'V^-1 X|`` and ``r^2`` follow from those of ``WX`` and ``Wy`` (with
``G = X'V^-1 X``, ``e`` the whitened residual, envelope theorem): ``d log|G| = tr(G^-1 dG)``,
``d r^2 = 2 e'(dWy - dWX beta)``. Intercept variances are optimised as ``a = theta^2`` (the
bound a >= 0 is then an ordinary active constraint); L-BFGS-B from lme4's start and from the
boundary of each term, then projected Newton steps with the exact Hessian.

Convergence is judged as lme4's ``check.conv.grad`` does: the gradient in ``theta`` scaled by the
Cholesky factor of the Hessian, ``max min(|H^-1/2 g|, |g|) < 2e-3``, with components on an active
bound (zero variance, criterion increasing into the feasible side) set to zero.

Satterthwaite's degrees of freedom for a contrast ``L beta`` follow lmerTest (Kuznetsova,
Brockhoff & Christensen, 2017, J. Stat. Softw. 82(13), section 3.2)::

    df = 2 (L C L')^2 / (g' A g)

with ``C = sigma^2 (X' V^-1 X)^-1`` the covariance of beta-hat as a function of the variance
parameters ``(theta, sigma)``, ``g`` its (exact) gradient, ``A = 2 H^+`` with ``H`` the exact
Hessian of the REML deviance ``log|V| + log|X'V^-1 X| + (n - p) log(2 pi sigma^2) + r^2/sigma^2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce

import numpy as np
from scipy import linalg, optimize, sparse, stats

SINGULAR_TOLERANCE = 1e-4  # lme4's isSingular() tolerance on theta (relative SDs)
GRADIENT_TOLERANCE = 2e-3  # lme4's check.conv.grad tolerance on the scaled gradient


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
    scaled_gradient: float = 0.0
    identifiable: bool = True
    identifiability_note: str = ""

    @property
    def std_errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))


# --------------------------------------------------------------------------- forward-mode AD


class Jet:
    """An array with its exact first and second derivatives in k parameters (forward mode).

    ``d`` has shape ``(k,) + v.shape`` and ``h`` ``(k, k) + v.shape``; ``None`` stands for
    zero. ``order`` is the highest derivative carried (0, 1 or 2)."""

    __slots__ = ("v", "d", "h", "order")

    def __init__(self, v, d=None, h=None, order: int = 0):
        self.v, self.d, self.h, self.order = np.asarray(v, dtype=float), d, h, order

    def expand(self, ndim: int) -> "Jet":
        extra = ndim - self.v.ndim
        if extra <= 0:
            return self
        shape = (1,) * extra + self.v.shape
        return Jet(self.v.reshape(shape),
                   None if self.d is None else self.d.reshape(self.d.shape[:1] + shape),
                   None if self.h is None else self.h.reshape(self.h.shape[:2] + shape), self.order)

    def __add__(self, other):
        return _jadd(self, _jet(other))

    __radd__ = __add__

    def __sub__(self, other):
        return _jadd(self, _jneg(_jet(other)))

    def __rsub__(self, other):
        return _jadd(_jet(other), _jneg(self))

    def __mul__(self, other):
        return bilinear(np.multiply, self, _jet(other))

    __rmul__ = __mul__

    def __truediv__(self, other):
        return self * reciprocal(_jet(other))


def _jet(x) -> Jet:
    return x if isinstance(x, Jet) else Jet(x)


def _sum(*parts):
    parts = [p for p in parts if p is not None]
    return reduce(np.add, parts) if parts else None


def _jadd(u: Jet, v: Jet) -> Jet:
    nd = max(u.v.ndim, v.v.ndim)
    u, v = u.expand(nd), v.expand(nd)
    return Jet(u.v + v.v, _sum(u.d, v.d), _sum(u.h, v.h), max(u.order, v.order))


def _jneg(u: Jet) -> Jet:
    return Jet(-u.v, None if u.d is None else -u.d, None if u.h is None else -u.h, u.order)


def linear(fn, u: Jet) -> Jet:
    """A linear map applied to value and derivatives (fn must accept leading axes)."""
    return Jet(fn(u.v), None if u.d is None else fn(u.d), None if u.h is None else fn(u.h), u.order)


def bilinear(fn, u: Jet, v: Jet) -> Jet:
    """A bilinear map (product, matrix product) with the product rule up to second order."""
    nd = max(u.v.ndim, v.v.ndim)
    u, v = u.expand(nd), v.expand(nd)
    order = max(u.order, v.order)
    value = fn(u.v, v.v)
    d = _sum(None if u.d is None else fn(u.d, v.v), None if v.d is None else fn(u.v, v.d)) if order >= 1 else None
    h = None
    if order >= 2:
        cross = None
        if u.d is not None and v.d is not None:
            c = fn(u.d[:, None], v.d[None])
            cross = c + np.swapaxes(c, 0, 1)
        h = _sum(None if u.h is None else fn(u.h, v.v), None if v.h is None else fn(u.v, v.h), cross)
    return Jet(value, d, h, order)


def elementwise(u: Jet, f0, f1, f2) -> Jet:
    """f(u) for a scalar function with derivatives f1, f2 (chain rule to second order)."""
    value = f0(u.v)
    if u.d is None:
        return Jet(value, order=u.order)
    g1 = f1(u.v)
    d = g1 * u.d
    h = None
    if u.order >= 2:
        h = g1 * u.h if u.h is not None else 0.0
        h = h + f2(u.v) * u.d[:, None] * u.d[None]
    return Jet(value, d, h, u.order)


def reciprocal(u: Jet) -> Jet:
    return elementwise(u, lambda x: 1.0 / x, lambda x: -1.0 / x**2, lambda x: 2.0 / x**3)


def jsqrt(u: Jet) -> Jet:
    return elementwise(u, np.sqrt, lambda x: 0.5 / np.sqrt(x), lambda x: -0.25 / x**1.5)


def jlog1p(u: Jet) -> Jet:
    return elementwise(u, np.log1p, lambda x: 1.0 / (1.0 + x), lambda x: -1.0 / (1.0 + x) ** 2)


def jsolve(M: Jet, c: Jet) -> Jet:
    """x = M^-1 c for batched small matrices, with dx = M^-1 (dc - dM x)."""
    nd = max(M.v.ndim, c.v.ndim)
    M, c = M.expand(nd), c.expand(nd)
    inverse = np.linalg.inv(M.v)
    x = inverse @ c.v
    order = max(M.order, c.order)
    d = h = None
    if order >= 1:
        rhs = _sum(c.d, None if M.d is None else -(M.d @ x))
        d = None if rhs is None else inverse @ rhs
    if order >= 2:
        parts = [c.h, None if M.h is None else -(M.h @ x)]
        if M.d is not None and d is not None:
            t = M.d[:, None] @ d[None]
            parts.append(-(t + np.swapaxes(t, 0, 1)))
        rhs = _sum(*parts)
        h = None if rhs is None else inverse @ rhs
    return Jet(x, d, h, order)


def jlogdet(M: Jet) -> Jet:
    """sum over the batch of log|M_g|: d = tr(M^-1 dM), h = tr(M^-1 d2M) - tr(M^-1 dM M^-1 dM)."""
    sign, logdet = np.linalg.slogdet(M.v)
    if np.any(sign <= 0):
        raise np.linalg.LinAlgError("matrix not positive definite")
    value = logdet.sum()
    if M.order == 0 or M.d is None:
        return Jet(value, order=M.order)
    inverse = np.linalg.inv(M.v)
    P = inverse @ M.d  # k x G x q x q
    d = np.trace(P, axis1=-2, axis2=-1).sum(axis=-1)
    h = None
    if M.order >= 2:
        h = -np.einsum("agij,bgji->ab", P, P)
        if M.h is not None:
            h = h + np.trace(inverse @ M.h, axis1=-2, axis2=-1).sum(axis=-1)
    return Jet(value, d, h, M.order)


def _parameter_jets(values: np.ndarray, order: int) -> list[Jet]:
    """The parameters themselves as jets (derivative: unit vectors)."""
    k = len(values)
    eye = np.eye(k)
    return [Jet(np.array([v]), eye[i][:, None] if order >= 1 else None, None, order)
            for i, v in enumerate(values)]


# --------------------------------------------------------------------------- the model


class NestedLmm:
    """Gaussian linear mixed model: nested random intercepts (each term nested in the previous
    one, e.g. institution, institution:participant), or one random term with any design."""

    def __init__(self, y: np.ndarray, X: np.ndarray, terms: list[RandomTerm],
                 fixed_names: list[str] | None = None):
        self.y = np.asarray(y, dtype=float)
        self.X = np.asarray(X, dtype=float)
        self.terms = list(terms)
        self.n, self.p = self.X.shape
        self.fixed_names = list(fixed_names or [f"x{i}" for i in range(self.p)])
        if len(self.y) != self.n or any(len(t.levels) != self.n for t in self.terms):
            raise ValueError("y, X and the random terms must have one entry per observation")
        if not self.terms:
            raise ValueError("at least one random term is needed")
        if not (np.isfinite(self.y).all() and np.isfinite(self.X).all()):
            raise ValueError("y and X must be finite (drop missing values first)")
        if np.linalg.matrix_rank(self.X) < self.p:
            raise ValueError("the fixed-effects design is rank deficient; drop aliased columns first")
        if self.n <= self.p:
            raise ValueError("fewer observations than fixed effects")
        self.intercepts_only = all(t.q == 1 and np.all(np.asarray(t.design) == 1.0) for t in self.terms)
        if not self.intercepts_only and len(self.terms) > 1:
            raise ValueError("random slopes are supported for a single random term; nested terms "
                             "must be random intercepts")
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
        self.lower_bounds = np.array(self.lower_bounds)
        self._last = None
        if self.intercepts_only:
            self._layout_nested()
        else:
            self._layout_block()

    # ---------------------------------------------------------------- layouts

    def _codes(self) -> list[np.ndarray]:
        codes = [np.unique(np.asarray(t.levels).astype(str), return_inverse=True)[1].ravel() for t in self.terms]
        for k in range(1, len(codes)):
            parent = np.full(codes[k].max() + 1, -1)
            parent[codes[k]] = codes[k - 1]
            if np.any(parent[codes[k]] != codes[k - 1]):
                raise ValueError(f"random term '{self.terms[k].name}' is not nested in "
                                 f"'{self.terms[k - 1].name}'")
        return codes

    def _layout_nested(self) -> None:
        codes = self._codes()
        self.order = np.lexsort(tuple(reversed(codes)))
        sorted_codes = [c[self.order] for c in codes]
        deepest = sorted_codes[-1]
        starts = np.flatnonzero(np.r_[True, deepest[1:] != deepest[:-1]])
        self.group_starts = starts
        self.group_sizes = np.diff(np.r_[starts, self.n]).astype(float)
        self.group_of_row = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, self.n]))
        # Per level: the deepest groups' starts of each of its groups (contiguous after sorting).
        self.level_starts, self.level_counts, self.level_labels = [], [], []
        for k, c in enumerate(sorted_codes):
            at_groups = c[starts]
            first = np.flatnonzero(np.r_[True, at_groups[1:] != at_groups[:-1]])
            self.level_starts.append(first)
            self.level_counts.append(np.diff(np.r_[first, len(starts)]))
            labels = np.asarray(self.terms[k].levels)[self.order][starts[first]]
            self.level_labels.append(labels)
        # Segment sums over the deepest groups of each level's groups, as sparse 0/1 matrices
        # (several times faster than ufunc.reduceat on two-dimensional arrays).
        self.level_sum = [sparse.csr_matrix((np.ones(len(starts)), (np.repeat(np.arange(len(f)), n),
                                                                    np.arange(len(starts)))),
                                            shape=(len(f), len(starts)))
                          for f, n in zip(self.level_starts, self.level_counts)]
        data = np.column_stack([self.X, self.y])[self.order]
        self.group_means = np.add.reduceat(data, starts, axis=0) / self.group_sizes[:, None]
        within = data - self.group_means[self.group_of_row]
        self.R_within = np.linalg.qr(within, mode="r") if self.n > len(starts) else None
        self.sqrt_sizes = np.sqrt(self.group_sizes)[:, None]

    def _layout_block(self) -> None:
        term = self.terms[0]
        codes = self._codes()[0]
        self.order = np.argsort(codes, kind="stable")
        c = codes[self.order]
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        self.group_starts = starts
        self.group_of_row = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, self.n]))
        self.Zs = np.asarray(term.design, dtype=float)[self.order]
        self.data = np.column_stack([self.X, self.y])[self.order]
        self.ZtZ = np.add.reduceat(self.Zs[:, :, None] * self.Zs[:, None, :], starts, axis=0)
        self.ZtD = np.add.reduceat(self.Zs[:, :, None] * self.data[:, None, :], starts, axis=0)
        self.level_labels = [np.asarray(term.levels)[self.order][starts]]

    # ---------------------------------------------------------------- parametrisation

    def term_factors(self, theta: np.ndarray) -> list[np.ndarray]:
        factors = []
        for term, (sl, rows, cols) in zip(self.terms, self.theta_slices):
            factor = np.zeros((term.q, term.q))
            factor[rows, cols] = theta[sl]
            factors.append(factor)
        return factors

    def _to_phi(self, theta: np.ndarray) -> np.ndarray:
        """The optimiser's parameters: variance ratios a = theta^2 for nested intercepts."""
        return np.asarray(theta, float) ** 2 if self.intercepts_only else np.asarray(theta, float)

    def _to_theta(self, phi: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(phi, 0.0)) if self.intercepts_only else np.asarray(phi, float)

    # ---------------------------------------------------------------- whitening

    def _whiten_nested(self, phi: np.ndarray, order: int):
        """Whitened group rows (jets) and log|V| (jet) for nested intercepts, in phi = theta^2.

        Row g stands for the m_g observations of deepest group g: ``u_g = sqrt(m_g)`` times the
        group-constant part of the whitened data, and ``w_g = sqrt(m_g) z_g`` with ``z`` the
        whitened indicator of the level being processed."""
        ratios = _parameter_jets(phi, order)
        K = len(self.terms)
        total = lambda x: x.sum(axis=(-2, -1))  # noqa: E731
        # Deepest level: z = 1, so q = sqrt(1 + a m) and the whitened group mean is mean / q.
        t = ratios[K - 1] * self.group_sizes[:, None]
        logdet = linear(total, jlog1p(t))
        inv_q = reciprocal(jsqrt(1.0 + t))
        u = bilinear(np.multiply, inv_q, Jet(self.sqrt_sizes * self.group_means))
        w = inv_q * self.sqrt_sizes
        for k in range(K - 2, -1, -1):
            segment = lambda x, s=self.level_sum[k]: _sparse_rows(s, x)  # noqa: E731
            spread = lambda x, n=self.level_counts[k]: np.repeat(x, n, axis=-2)  # noqa: E731
            s = linear(segment, w * w)                     # z'z per group of level k
            c = linear(segment, w * u)                     # z'x per group of level k
            t = ratios[k] * s
            q = jsqrt(1.0 + t)
            h = ratios[k] * reciprocal(q * (q + 1.0))
            logdet = logdet + linear(total, jlog1p(t))
            u = u - w * linear(spread, h * c)              # x - z h (z'x)
            w = w * linear(spread, reciprocal(q))          # the parent's whitened indicator
        return u, logdet

    def _whiten_block(self, phi: np.ndarray, order: int):
        """Whitened rows (jets) and log|V| (jet) for one random term with q columns."""
        term = self.terms[0]
        sl, rows, cols = self.theta_slices[0]
        k = self.n_theta
        lam = np.zeros((term.q, term.q))
        lam[rows, cols] = phi[sl]
        dlam = None
        if order >= 1:
            dlam = np.zeros((k, term.q, term.q))
            dlam[np.arange(k), rows, cols] = 1.0
        Lam = Jet(lam, dlam, None, order)
        LamT = linear(lambda x: np.swapaxes(x, -1, -2), Lam)
        M = bilinear(np.matmul, LamT, bilinear(np.matmul, Jet(self.ZtZ), Lam)) + np.eye(term.q)
        c = bilinear(np.matmul, LamT, Jet(self.ZtD))                 # G x q x m
        w = jsolve(M, c)                                              # M^-1 Lambda' Z'D
        fitted = bilinear(np.matmul, Lam, w)                          # Lambda M^-1 Lambda' Z'D
        g = self.group_of_row
        per_row = linear(lambda x: np.einsum("nq,...nqm->...nm", self.Zs, x[..., g, :, :]), fitted)
        extra = linear(lambda x: x.reshape(x.shape[:-3] + (-1, x.shape[-1])), w)
        whitened = Jet(self.data) - per_row
        stacked = Jet(np.concatenate([whitened.v, extra.v], axis=-2),
                      _concat(whitened.d, extra.d, whitened.v.shape, extra.v.shape, 1, k),
                      _concat(whitened.h, extra.h, whitened.v.shape, extra.v.shape, 2, k), order)
        return stacked, jlogdet(M)

    # ---------------------------------------------------------------- profiled criterion

    def _profile(self, D0: np.ndarray, fixed_rows: np.ndarray | None) -> dict:
        """beta, r^2 and log|X'V^-1 X| from whitened rows [WX Wy] (plus constant rows)."""
        p = self.p
        X0, y0 = D0[:, :p], D0[:, p]
        gram = D0.T @ D0
        if fixed_rows is not None:
            gram += fixed_rows.T @ fixed_rows
            FX, Fy = fixed_rows[:, :p], fixed_rows[:, p]
        chol = np.linalg.cholesky(gram[:p, :p])  # X'V^-1 X from whitened rows: a sum of squares
        beta = linalg.cho_solve((chol, True), gram[:p, p])
        # r^2 from explicit whitened residuals (never y'V^-1 y - b'b), with iterative
        # refinement of beta (semi-normal equations; Bjorck 1996, section 2.9).
        for _ in range(3):
            e = y0 - X0 @ beta
            correction = X0.T @ e
            if fixed_rows is not None:
                correction = correction + FX.T @ (Fy - FX @ beta)
            beta = beta + linalg.cho_solve((chol, True), correction)
        e = y0 - X0 @ beta
        r2 = float(e @ e)
        if fixed_rows is not None:
            e_fixed = Fy - FX @ beta
            r2 += float(e_fixed @ e_fixed)
        if not r2 > 0:
            raise np.linalg.LinAlgError("the fixed effects fit the outcome exactly")
        return {"chol": chol, "beta": beta, "e": e, "r2": r2,
                "logdet_x": 2.0 * float(np.log(np.diag(chol)).sum())}

    def _criterion(self, logdet_v: float, logdet_x: float, r2: float) -> float:
        dof = self.n - self.p
        return logdet_v + logdet_x + dof * (1.0 + np.log(2.0 * np.pi * r2 / dof))

    def _nested_steps(self, phi: np.ndarray):
        """The whitening steps at phi (no derivatives), deepest level first, and log|V|. The
        deepest step is the scaling 1/q; a step of a higher level is (segment-sum matrix,
        spread counts, w = sqrt(m) z before the step, h)."""
        K = len(self.terms)
        t = phi[K - 1] * self.group_sizes[:, None]
        logdet = float(np.log1p(t).sum())
        inv_q = 1.0 / np.sqrt(1.0 + t)
        steps = [inv_q]
        w = self.sqrt_sizes * inv_q
        for k in range(K - 2, -1, -1):
            t = phi[k] * (self.level_sum[k] @ (w * w))
            q = np.sqrt(1.0 + t)
            steps.append((self.level_sum[k], self.level_counts[k], w, phi[k] / (q * (q + 1.0))))
            logdet += float(np.log1p(t).sum())
            w = w / np.repeat(q, self.level_counts[k], axis=0)
        return steps, logdet

    @staticmethod
    def _apply_steps(steps, x: np.ndarray, transpose: bool = False) -> np.ndarray:
        """W x (or W' x) for group rows x (sqrt(m) times group-constant parts); every step is
        symmetric, so W' applies them in reverse order."""
        for step in (reversed(steps) if transpose else steps):
            if isinstance(step, np.ndarray):
                x = x * step
            else:
                summer, counts, w, h = step
                x = x - w * np.repeat(h * (summer @ (w * x)), counts, axis=0)
        return x

    def _nested_value_gradient(self, phi: np.ndarray) -> dict:
        """Criterion and its exact gradient in phi = theta^2 for nested intercepts, by the REML
        score: d/da_k = tr(V^-1 Z_k Z_k') - tr(G^-1 A_k' A_k) - (n - p) |Z_k' V^-1 r|^2 / r^2,
        A_k = Z_k' V^-1 X (Searle, Casella & McCulloch 1992, section 6.6)."""
        steps, logdet_v = self._nested_steps(phi)
        rows = self._apply_steps(steps, self.sqrt_sizes * self.group_means)
        out = self._profile(rows, self.R_within)
        out["logdet_v"] = logdet_v
        out["criterion"] = self._criterion(logdet_v, out["logdet_x"], out["r2"])
        p, beta = self.p, out["beta"]
        # W [X r] = [WX, Wy - WX beta]; then W' gives the group parts of V^-1 [X r].
        whitened = rows.copy()
        whitened[:, p] = out["e"]
        weighted = self.sqrt_sizes * self._apply_steps(steps, whitened, transpose=True)
        Ginv = linalg.cho_solve((out["chol"], True), np.eye(p))
        trace_v = self._logdet_v_gradient(phi)
        gradient = np.empty(len(phi))
        dof = self.n - self.p
        K = len(self.terms)
        for k in range(K):
            # Z_k' V^-1 [X r]: sums over each group's rows (within-group deviations sum to 0).
            A = weighted if k == K - 1 else self.level_sum[k] @ weighted
            AX = A[:, :p]
            gradient[k] = (trace_v[k] - float((Ginv * (AX.T @ AX)).sum())
                           - dof * float(A[:, p] @ A[:, p]) / out["r2"])
        out["gradient"] = gradient
        return out

    def _logdet_v_gradient(self, phi: np.ndarray) -> np.ndarray:
        """d log|V| / d a_k = tr(V^-1 Z_k Z_k'), by forward differentiation of the group-level
        recursion of w^2 = m z^2 (the whitened indicators' squared norms)."""
        K = len(self.terms)
        m = self.group_sizes
        t = phi[K - 1] * m
        gradient = np.zeros(K)
        gradient[K - 1] = float((m / (1.0 + t)).sum())
        w2 = m / (1.0 + t)
        dw2 = np.zeros((K, len(m)))
        dw2[K - 1] = -w2 * w2
        for k in range(K - 2, -1, -1):
            summer, counts = self.level_sum[k], self.level_counts[k]
            s = summer @ w2
            ds = (summer @ dw2.T).T
            t = phi[k] * s
            dt = phi[k] * ds
            dt[k] += s
            gradient += (dt / (1.0 + t)).sum(axis=1)
            spread_1t = np.repeat(1.0 + t, counts)
            dw2 = dw2 / spread_1t - w2 * np.repeat(dt, counts, axis=1) / spread_1t**2
            w2 = w2 / spread_1t
        return gradient

    def _evaluate(self, phi: np.ndarray, order: int) -> dict:
        phi = np.asarray(phi, dtype=float)
        key = (phi.tobytes(), order)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        out = self._evaluate_uncached(phi, order)
        self._last = (key, out)
        return out

    def _evaluate_uncached(self, phi: np.ndarray, order: int) -> dict:
        if self.intercepts_only and order < 2:
            if order == 1:
                return self._nested_value_gradient(phi)
            steps, logdet_v = self._nested_steps(phi)
            out = self._profile(self._apply_steps(steps, self.sqrt_sizes * self.group_means), self.R_within)
            out.update(logdet_v=logdet_v, criterion=self._criterion(logdet_v, out["logdet_x"], out["r2"]))
            return out
        if self.intercepts_only:
            rows, logdet_v = self._whiten_nested(phi, order)
            fixed_rows = self.R_within
        else:
            rows, logdet_v = self._whiten_block(phi, order)
            fixed_rows = None
        p, dof = self.p, self.n - self.p
        D0 = rows.v
        X0 = D0[:, :p]
        out = self._profile(D0, fixed_rows)
        beta, e, r2, chol = out["beta"], out["e"], out["r2"], out["chol"]
        out.update(logdet_v=float(logdet_v.v),
                   criterion=self._criterion(float(logdet_v.v), out["logdet_x"], r2))
        if order == 0:
            return out
        k = len(phi)
        zeros_k = np.zeros(k)
        Ginv = linalg.cho_solve((chol, True), np.eye(p))
        Xd = rows.d[..., :p] if rows.d is not None else np.zeros((k,) + X0.shape)
        yd = rows.d[..., p] if rows.d is not None else np.zeros((k, len(e)))
        rd = yd - Xd @ beta
        Gd = np.swapaxes(Xd, 1, 2) @ X0
        Gd = Gd + np.swapaxes(Gd, 1, 2)
        ldx_d = np.einsum("ij,kji->k", Ginv, Gd)
        r2_d = 2.0 * rd @ e
        ldv_d = logdet_v.d.ravel() if logdet_v.d is not None else zeros_k
        out.update(logdet_v_d=ldv_d, logdet_x_d=ldx_d, r2_d=r2_d, Ginv=Ginv, G_d=Gd,
                   gradient=ldv_d + ldx_d + dof * r2_d / r2)
        if order == 1:
            return out
        Xh = rows.h[..., :p] if rows.h is not None else np.zeros((k, k) + X0.shape)
        yh = rows.h[..., p] if rows.h is not None else np.zeros((k, k, len(e)))
        beta_d = (e @ Xd + rd @ X0) @ Ginv
        e_d = rd - beta_d @ X0.T
        r2_h = 2.0 * (np.einsum("jn,in->ij", e_d, rd)
                      + np.einsum("n,ijn->ij", e, yh - Xh @ beta)
                      - np.einsum("n,anc,bc->ab", e, Xd, beta_d))
        r2_h = 0.5 * (r2_h + r2_h.T)
        Gh = np.swapaxes(Xh, 2, 3) @ X0
        Gh = Gh + np.swapaxes(Gh, 2, 3)
        cross = np.swapaxes(Xd, 1, 2)[:, None] @ Xd[None]
        Gh = Gh + cross + np.swapaxes(cross, 2, 3)
        GinvGd = Ginv @ Gd
        ldx_h = np.einsum("ij,abji->ab", Ginv, Gh) - np.einsum("aij,bji->ab", GinvGd, GinvGd)
        ldv_h = logdet_v.h.reshape(k, k) if logdet_v.h is not None else np.zeros((k, k))
        out.update(logdet_v_h=ldv_h, logdet_x_h=ldx_h, r2_h=r2_h,
                   hessian=ldv_h + ldx_h + dof * (r2_h / r2 - np.outer(r2_d, r2_d) / r2**2))
        return out

    def reml_criterion(self, theta: np.ndarray) -> float:
        """-2 x REML log-likelihood with sigma profiled out (lme4's "REML criterion")."""
        try:
            return self._evaluate(self._to_phi(theta), 0)["criterion"]
        except np.linalg.LinAlgError:
            return np.inf

    def _objective(self, phi: np.ndarray):
        try:
            out = self._evaluate(phi, 1)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(phi)
        return out["criterion"], out["gradient"]

    # ---------------------------------------------------------------- fitting

    def _phi_bounds(self) -> list[tuple]:
        return [(0.0, None) if np.isfinite(lb) else (None, None) for lb in self.lower_bounds]

    def default_starts(self) -> list[np.ndarray]:
        """lme4's start (identity factors) and every variance component on the boundary (with
        variance ratios as parameters, the optimiser leaves the boundary where the criterion
        falls inwards, so this start reaches a boundary optimum from the other side)."""
        base = np.array([1.0 if lb == 0.0 else 0.0 for lb in self.lower_bounds])
        return [base, np.zeros_like(base)]

    def _free(self, phi: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        """Parameters not held by an active bound (at 0 with the criterion rising inwards)."""
        at_bound = np.isfinite(self.lower_bounds) & (phi <= 0.0)
        return ~(at_bound & (gradient >= 0.0))

    def _newton(self, phi: np.ndarray, max_steps: int = 30) -> np.ndarray:
        """Projected Newton steps with the exact Hessian, with backtracking (polishes the
        quasi-Newton optimum to full precision)."""
        lower = np.where(np.isfinite(self.lower_bounds), 0.0, -np.inf)
        current = self._evaluate(phi, 2)
        for _ in range(max_steps):
            g, H = current["gradient"], current["hessian"]
            free = self._free(phi, g)
            if not free.any():
                break
            Hf = H[np.ix_(free, free)]
            try:
                np.linalg.cholesky(Hf)
                step_free = -np.linalg.solve(Hf, g[free])
            except np.linalg.LinAlgError:
                break
            if abs(float(g[free] @ step_free)) < 1e-13:
                break
            step = np.zeros_like(phi)
            step[free] = step_free
            accepted = False
            for alpha in (1.0, 0.5, 0.25, 0.125, 1 / 16, 1 / 32):
                trial = np.maximum(phi + alpha * step, lower)
                try:
                    candidate = self._evaluate(trial, 2)
                except np.linalg.LinAlgError:
                    continue
                if candidate["criterion"] <= current["criterion"]:
                    phi, current, accepted = trial, candidate, True
                    break
            if not accepted:
                break
        return phi

    def fit(self, starts: list[np.ndarray] | None = None) -> LmmFit:
        bounds = self._phi_bounds()
        candidates = []
        for start in [*(starts or []), *self.default_starts()]:
            start = np.maximum(np.asarray(start, dtype=float), self.lower_bounds)
            result = optimize.minimize(self._objective, self._to_phi(start), jac=True, method="L-BFGS-B",
                                       bounds=bounds, options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-7})
            candidates.append(result)
        best = min(candidates, key=lambda r: r.fun)
        phi = self._newton(np.asarray(best.x, dtype=float))
        theta = self._to_theta(phi)
        # Snap numerically-zero diagonal elements to the boundary, as lme4 reports them.
        for index, lb in enumerate(self.lower_bounds):
            if lb == 0.0 and 0.0 < theta[index] < SINGULAR_TOLERANCE:
                trial = theta.copy()
                trial[index] = 0.0
                current = self.reml_criterion(theta)
                if self.reml_criterion(trial) <= current + 1e-10 * abs(current):
                    theta = trial
        return self._summarise(theta, best.message if isinstance(best.message, str) else str(best.message))

    def _summarise(self, theta: np.ndarray, message: str) -> LmmFit:
        out = self._evaluate(self._to_phi(theta), 2)
        sigma2 = out["r2"] / (self.n - self.p)
        factors = self.term_factors(theta)
        covariances = {term.name: sigma2 * (f @ f.T) for term, f in zip(self.terms, factors)}
        diagonal = theta[self.lower_bounds == 0.0]
        scaled, note = self._scaled_gradient(theta, out)
        identifiable, identifiability = self.identifiability()
        return LmmFit(
            beta=out["beta"], vcov=sigma2 * out["Ginv"], sigma=float(np.sqrt(sigma2)), theta=theta,
            reml_criterion=float(out["criterion"]), covariances=covariances,
            converged=bool(np.isfinite(out["criterion"]) and scaled < GRADIENT_TOLERANCE),
            singular=bool((diagonal < SINGULAR_TOLERANCE).any()),
            optimizer_message=f"{message}; max scaled gradient {scaled:.2e}{note}", n_obs=self.n,
            fixed_names=list(self.fixed_names), terms=self.terms, model=self,
            scaled_gradient=float(scaled), identifiable=identifiable, identifiability_note=identifiability)

    def _theta_derivatives(self, theta: np.ndarray, out: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian in theta of a quantity whose phi-derivatives are in ``out``."""
        g, H = out[f"{name}_d"] if name else out["gradient"], out[f"{name}_h"] if name else out["hessian"]
        if not self.intercepts_only:
            return g, H
        # phi = theta^2: d/dtheta = 2 theta d/dphi; d2/dtheta2 = 4 theta theta' H + 2 diag(g).
        return 2.0 * theta * g, 4.0 * np.outer(theta, theta) * H + 2.0 * np.diag(g)

    def _scaled_gradient(self, theta: np.ndarray, out: dict) -> tuple[float, str]:
        """lme4's check.conv.grad: max over parameters of min(|H^-1/2 g|, |g|) in theta, with
        parameters held at their bound by the criterion rising inwards excluded."""
        g, H = self._theta_derivatives(theta, out, "")
        phi = self._to_phi(theta)
        free = self._free(phi, out["gradient"])
        if self.intercepts_only:
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

    def identifiability(self) -> tuple[bool, str]:
        """Whether the variance components are identifiable from the design: a nested level
        whose every group holds exactly one group of the next level (e.g. one participant per
        institution), or a deepest level of single observations, confounds two components."""
        problems = []
        if self.intercepts_only:
            names = [t.name for t in self.terms]
            for k in range(1, len(self.terms)):
                if len(self.level_starts[k]) == len(self.level_starts[k - 1]):
                    problems.append(f"every '{names[k - 1]}' group has a single '{names[k]}' group, so "
                                    f"their variances are not separately identifiable (only their sum is)")
            if np.all(self.group_sizes == 1):
                problems.append(f"every '{names[-1]}' group has a single observation, so its variance "
                                "is not separately identifiable from the residual variance")
        return (not problems), "; ".join(problems)

    # ---------------------------------------------------------------- inference

    def varpar_derivatives(self, fit: LmmFit) -> tuple[np.ndarray, np.ndarray]:
        """Exact Hessian of the REML deviance in (theta, sigma) and the derivatives of
        C = sigma^2 (X'V^-1 X)^-1 in (theta, sigma), shape (k + 1, p, p)."""
        theta, sigma = fit.theta, fit.sigma
        out = self._evaluate(self._to_phi(theta), 2)
        dof = self.n - self.p
        out["ld_d"] = out["logdet_v_d"] + out["logdet_x_d"]
        out["ld_h"] = out["logdet_v_h"] + out["logdet_x_h"]
        ld_g, ld_H = self._theta_derivatives(theta, out, "ld")
        r2_g, r2_H = self._theta_derivatives(theta, out, "r2")
        r2 = out["r2"]
        k = len(theta)
        H = np.zeros((k + 1, k + 1))
        H[:k, :k] = ld_H + r2_H / sigma**2
        H[:k, k] = H[k, :k] = -2.0 * r2_g / sigma**3
        H[k, k] = -2.0 * dof / sigma**2 + 6.0 * r2 / sigma**4
        Ginv = out["Ginv"]
        G_d = out["G_d"] * (2.0 * theta)[:, None, None] if self.intercepts_only else out["G_d"]
        jac = np.concatenate([-sigma**2 * (Ginv @ G_d @ Ginv), (2.0 * sigma * Ginv)[None]])
        return H, jac

    def satterthwaite(self, fit: LmmFit, contrasts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Satterthwaite degrees of freedom and standard errors for each row of ``contrasts``."""
        hessian, jac = self.varpar_derivatives(fit)
        cov_varpar = 2.0 * np.linalg.pinv(hessian)
        contrasts = np.atleast_2d(contrasts)
        dfs, ses = [], []
        for L in contrasts:
            variance = float(L @ fit.vcov @ L)
            gradient = np.einsum("i,kij,j->k", L, jac, L)
            denominator = float(gradient @ cov_varpar @ gradient)
            dfs.append(2.0 * variance**2 / denominator if denominator > 0 else np.inf)
            ses.append(np.sqrt(variance))
        return np.array(dfs), np.array(ses)

    def random_effects(self, fit: LmmFit) -> dict[str, np.ndarray]:
        """Conditional modes b = Lambda Lambda' Z' V^-1 (y - X beta) per term: levels x q."""
        residual = (self.y - self.X @ fit.beta)[self.order]
        if not self.intercepts_only:
            lam = self.term_factors(fit.theta)[0]
            ztr = np.add.reduceat(self.Zs * residual[:, None], self.group_starts, axis=0)
            M = lam.T @ self.ZtZ @ lam + np.eye(lam.shape[0])
            u = np.linalg.solve(M, (lam.T @ ztr[:, :, None]))[..., 0]
            return {self.terms[0].name: u @ lam.T}
        vinv_means = self._vinv_group_parts(fit.theta, residual)
        weighted = self.group_sizes * vinv_means
        effects = {}
        for k, term in enumerate(self.terms):
            sums = np.add.reduceat(weighted, self.level_starts[k])
            effects[term.name] = (fit.theta[k] ** 2 * sums)[:, None]
        return effects

    def _vinv_group_parts(self, theta: np.ndarray, residual_sorted: np.ndarray) -> np.ndarray:
        """The group-constant part of V^-1 r (rows sorted): W'W r with W the nested whitening;
        the within-group deviations of r pass through unchanged."""
        steps, _ = self._nested_steps(self._to_phi(theta))
        means = np.add.reduceat(residual_sorted, self.group_starts) / self.group_sizes
        x = self.sqrt_sizes * means[:, None]
        x = self._apply_steps(steps, self._apply_steps(steps, x), transpose=True)
        return (x / self.sqrt_sizes)[:, 0]

    def residuals(self, fit: LmmFit) -> np.ndarray:
        """Conditional residuals y - X beta - Z b (= V^-1 (y - X beta) in relative scale)."""
        residual = (self.y - self.X @ fit.beta)[self.order]
        if self.intercepts_only:
            means = np.add.reduceat(residual, self.group_starts) / self.group_sizes
            parts = self._vinv_group_parts(fit.theta, residual)
            sorted_out = residual - means[self.group_of_row] + parts[self.group_of_row]
        else:
            b = self.random_effects(fit)[self.terms[0].name]
            sorted_out = residual - np.einsum("nq,nq->n", self.Zs, b[self.group_of_row])
        out = np.empty(self.n)
        out[self.order] = sorted_out
        return out


def _sparse_rows(matrix, x: np.ndarray) -> np.ndarray:
    """matrix @ x along the second-to-last axis of x (any leading axes)."""
    moved = np.moveaxis(x, -2, 0)
    out = matrix @ moved.reshape(moved.shape[0], -1)
    return np.moveaxis(out.reshape((matrix.shape[0],) + moved.shape[1:]), 0, -2)


def _concat(a, b, shape_a, shape_b, lead: int, k: int):
    """Concatenate derivative arrays along the row axis (None = zeros)."""
    if a is None and b is None:
        return None
    a = np.zeros((k,) * lead + shape_a) if a is None else a
    b = np.zeros((k,) * lead + shape_b) if b is None else b
    return np.concatenate([a, b], axis=-2)


def t_inference(estimate: np.ndarray, se: np.ndarray, df: np.ndarray, level: float = 0.95):
    """t statistics, two-sided p-values and confidence limits with the given df."""
    statistic = estimate / se
    p_value = 2 * stats.t.sf(np.abs(statistic), df)
    quantile = stats.t.ppf(0.5 + level / 2, df)
    return statistic, p_value, estimate - quantile * se, estimate + quantile * se
