"""The profiled REML criterion and its exact gradient and Hessian.

With ``V = I + Z Lambda Lambda' Z'`` the profiled REML criterion (lme4's ``REMLcrit``; Bates,
Maechler, Bolker & Walker 2015, J. Stat. Softw. 67(1), eq. 42) is::

    d(theta) = log|V| + log|X' V^-1 X| + (n - p) (1 + log(2 pi r^2 / (n - p)))

with ``r^2 = min_beta (y - X beta)' V^-1 (y - X beta)`` and ``sigma^2 = r^2 / (n - p)``.

Exact whitening instead of cross-product differences: ``X'V^-1 X`` is the Gram matrix of the
whitened rows ``WX`` (``W'W = V^-1``, see ``structure``; a sum of squares, Cholesky-factored for
``log|X'V^-1 X|``), and ``r^2`` is the sum of squares of the explicit whitened residuals
``Wy - WX beta`` with beta refined iteratively (semi-normal equations; Bjorck 1996, Numerical
Methods for Least Squares Problems, section 2.9). No large cross-products are ever subtracted
(never ``X'X - A'A`` or ``y'y - b'b``), so the criterion keeps its precision when the residual
variance is tiny relative to the outcome's level (tests/test_lmm.py checks it against a 40-digit
computation).

Derivatives, in the optimiser's parameters ``phi`` (``phi = theta^2`` for nested intercepts):
the gradient of nested intercepts is the analytic REML score; otherwise, and for every Hessian,
the whitening is evaluated with second-order forward-mode derivatives (``jet``) and the
derivatives of ``log|X'V^-1 X|`` and ``r^2`` follow from those of ``WX`` and ``Wy`` (with
``G = X'V^-1 X``, ``e`` the whitened residual, envelope theorem): ``d log|G| = tr(G^-1 dG)``,
``d r^2 = 2 e'(dWy - dWX beta)``.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from scipy import linalg

from dpo_eval.analysis.lmm.structure import ModelStructure, RandomTerm

CACHED_EVALUATIONS = 4  # the optimum, a rejected trial step and the snapping trials fit in it


class ProfiledCriterion(ModelStructure):
    """The structure of a model with its profiled REML criterion, evaluated to order 0, 1 or 2
    (value, gradient, Hessian) in phi; the latest evaluations are cached by their exact phi."""

    def __init__(self, y: np.ndarray, X: np.ndarray, terms: list[RandomTerm],
                 fixed_names: list[str] | None = None):
        super().__init__(y, X, terms, fixed_names)
        self._cache: OrderedDict[bytes, tuple[int, dict]] = OrderedDict()

    def reml_criterion(self, theta: np.ndarray) -> float:
        """-2 x REML log-likelihood with sigma profiled out (lme4's "REML criterion")."""
        try:
            return self._evaluate(self._to_phi(theta), 0)["criterion"]
        except np.linalg.LinAlgError:
            return np.inf

    def _objective(self, phi: np.ndarray):
        """Criterion and gradient for the quasi-Newton optimiser (infinite where V or X'V^-1 X
        is not positive definite)."""
        try:
            out = self._evaluate(phi, 1)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(phi)
        return out["criterion"], out["gradient"]

    def _evaluate(self, phi: np.ndarray, order: int) -> dict:
        """The criterion's quantities at phi up to ``order``; a cached evaluation of at least
        that order at the same phi (bit for bit) is returned as it is."""
        phi = np.asarray(phi, dtype=float)
        key = phi.tobytes()
        cached = self._cache.get(key)
        if cached is not None and cached[0] >= order:
            self._cache.move_to_end(key)
            return cached[1]
        out = self._evaluate_uncached(phi, order)
        self._cache[key] = (order, out)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHED_EVALUATIONS:
            self._cache.popitem(last=False)
        return out

    def _evaluate_uncached(self, phi: np.ndarray, order: int) -> dict:
        if self.intercepts_only and order == 1:
            return self._nested_value_gradient(phi)
        if self.intercepts_only and order == 0:
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
        out = self._profile(rows.v, fixed_rows)
        out.update(logdet_v=float(logdet_v.v),
                   criterion=self._criterion(float(logdet_v.v), out["logdet_x"], out["r2"]))
        if order >= 1:
            Xd, rd = self._jet_gradient(out, rows, logdet_v, len(phi))
            if order >= 2:
                self._jet_hessian(out, rows, logdet_v, Xd, rd)
        return out

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

    def _nested_value_gradient(self, phi: np.ndarray) -> dict:
        """Criterion and its exact gradient in phi = theta^2 for nested intercepts, by the REML
        score: d/da_k = tr(V^-1 Z_k Z_k') - tr(G^-1 A_k' A_k) - (n - p) |Z_k' V^-1 r|^2 / r^2,
        A_k = Z_k' V^-1 X (Searle, Casella & McCulloch 1992, section 6.6)."""
        steps, logdet_v = self._nested_steps(phi)
        rows = self._apply_steps(steps, self.sqrt_sizes * self.group_means)
        out = self._profile(rows, self.R_within)
        out["logdet_v"] = logdet_v
        out["criterion"] = self._criterion(logdet_v, out["logdet_x"], out["r2"])
        p = self.p
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

    def _jet_gradient(self, out: dict, rows, logdet_v, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Gradient of the criterion and of its parts from the whitened rows' derivatives;
        returns the derivatives of WX and of the whitened residual for the Hessian."""
        p, dof = self.p, self.n - self.p
        X0, beta, e, r2 = rows.v[:, :p], out["beta"], out["e"], out["r2"]
        Ginv = linalg.cho_solve((out["chol"], True), np.eye(p))
        Xd = rows.d[..., :p] if rows.d is not None else np.zeros((k,) + X0.shape)
        yd = rows.d[..., p] if rows.d is not None else np.zeros((k, len(e)))
        rd = yd - Xd @ beta
        Gd = np.swapaxes(Xd, 1, 2) @ X0
        Gd = Gd + np.swapaxes(Gd, 1, 2)
        ldx_d = np.einsum("ij,kji->k", Ginv, Gd)
        r2_d = 2.0 * rd @ e
        ldv_d = logdet_v.d.ravel() if logdet_v.d is not None else np.zeros(k)
        out.update(logdet_v_d=ldv_d, logdet_x_d=ldx_d, r2_d=r2_d, Ginv=Ginv, G_d=Gd,
                   gradient=ldv_d + ldx_d + dof * r2_d / r2)
        return Xd, rd

    def _jet_hessian(self, out: dict, rows, logdet_v, Xd: np.ndarray, rd: np.ndarray) -> None:
        """Hessian of the criterion and of its parts (log|V|, log|G|, r^2)."""
        p, dof, k = self.p, self.n - self.p, len(Xd)
        X0, beta, e, r2, Ginv = rows.v[:, :p], out["beta"], out["e"], out["r2"], out["Ginv"]
        Gd, r2_d = out["G_d"], out["r2_d"]
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
