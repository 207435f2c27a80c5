"""Model structure and whitening: the random terms, the theta layout and the exact whitening
``W`` (``W'W = V^-1``) of the data.

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
penalised least-squares system of Bates, Maechler, Bolker & Walker 2015, J. Stat. Softw. 67(1),
eq. 14) is an isometry for ``V^-1`` (Woodbury), and ``log|V| = sum_g log|M_g|``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from dpo_eval.analysis.lmm.jet import Jet, bilinear, concat_rows, jlog1p, jlogdet, jsolve, jsqrt, linear, \
    parameter_jets, reciprocal


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


def sparse_rows(matrix, x: np.ndarray) -> np.ndarray:
    """matrix @ x along the second-to-last axis of x (any leading axes)."""
    moved = np.moveaxis(x, -2, 0)
    out = matrix @ moved.reshape(moved.shape[0], -1)
    return np.moveaxis(out.reshape((matrix.shape[0],) + moved.shape[1:]), 0, -2)


class ModelStructure:
    """The data of a Gaussian linear mixed model sorted into its groups, the theta layout and
    the whitening: nested random intercepts (each term nested in the previous one, e.g.
    institution, institution:participant), or one random term with any design."""

    def __init__(self, y: np.ndarray, X: np.ndarray, terms: list[RandomTerm],
                 fixed_names: list[str] | None = None):
        self.y = np.asarray(y, dtype=float)
        self.X = np.asarray(X, dtype=float)
        self.terms = list(terms)
        self.n, self.p = self.X.shape
        self.fixed_names = list(fixed_names or [f"x{i}" for i in range(self.p)])
        self._validate()
        self.intercepts_only = all(t.q == 1 and np.all(np.asarray(t.design) == 1.0) for t in self.terms)
        if not self.intercepts_only and len(self.terms) > 1:
            raise ValueError("random slopes are supported for a single random term; nested terms "
                             "must be random intercepts")
        self._theta_layout()
        if self.intercepts_only:
            self._layout_nested()
        else:
            self._layout_block()

    def _validate(self) -> None:
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

    def _theta_layout(self) -> None:
        """Per term, the lower triangle of its Cholesky factor, column by column (lme4's order);
        diagonal elements bounded below by 0."""
        self.theta_slices, lower_bounds, start = [], [], 0
        for term in self.terms:
            rows, cols = np.tril_indices(term.q)
            order = np.lexsort((rows, cols))
            rows, cols = rows[order], cols[order]
            self.theta_slices.append((slice(start, start + term.n_theta), rows, cols))
            lower_bounds += [0.0 if r == c else -np.inf for r, c in zip(rows, cols)]
            start += term.n_theta
        self.n_theta = start
        self.lower_bounds = np.array(lower_bounds)

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
        """Each term's relative covariance factor Lambda_k (lower triangular) at theta."""
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

    # ---------------------------------------------------------------- whitening with derivatives

    def _whiten_nested(self, phi: np.ndarray, order: int):
        """Whitened group rows (jets) and log|V| (jet) for nested intercepts, in phi = theta^2.

        Row g stands for the m_g observations of deepest group g: ``u_g = sqrt(m_g)`` times the
        group-constant part of the whitened data, and ``w_g = sqrt(m_g) z_g`` with ``z`` the
        whitened indicator of the level being processed."""
        ratios = parameter_jets(phi, order)
        K = len(self.terms)
        total = lambda x: x.sum(axis=(-2, -1))  # noqa: E731
        # Deepest level: z = 1, so q = sqrt(1 + a m) and the whitened group mean is mean / q.
        t = ratios[K - 1] * self.group_sizes[:, None]
        logdet = linear(total, jlog1p(t))
        inv_q = reciprocal(jsqrt(1.0 + t))
        u = bilinear(np.multiply, inv_q, Jet(self.sqrt_sizes * self.group_means))
        w = inv_q * self.sqrt_sizes
        for k in range(K - 2, -1, -1):
            segment = lambda x, s=self.level_sum[k]: sparse_rows(s, x)  # noqa: E731
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
                      concat_rows(whitened.d, extra.d, whitened.v.shape, extra.v.shape, 1, k),
                      concat_rows(whitened.h, extra.h, whitened.v.shape, extra.v.shape, 2, k), order)
        return stacked, jlogdet(M)

    # ---------------------------------------------------------------- whitening, values only

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

    def _vinv_group_parts(self, theta: np.ndarray, residual_sorted: np.ndarray) -> np.ndarray:
        """The group-constant part of V^-1 r (rows sorted): W'W r with W the nested whitening;
        the within-group deviations of r pass through unchanged."""
        steps, _ = self._nested_steps(self._to_phi(theta))
        means = np.add.reduceat(residual_sorted, self.group_starts) / self.group_sizes
        x = self.sqrt_sizes * means[:, None]
        x = self._apply_steps(steps, self._apply_steps(steps, x), transpose=True)
        return (x / self.sqrt_sizes)[:, 0]
