"""Satterthwaite degrees of freedom of the two-level REML model in 40-digit decimal arithmetic.

An independent reference for the engine's exact df (``dpo_eval.analysis.lmm.NestedLmm.satterthwaite``) on
designs where lmerTest's numerical derivatives are not accurate enough to serve as one (a
residual variance of 1e-6 at scores around 3). Nothing here uses numpy linear algebra or the
engine: every number is computed with Python's ``decimal`` module from the definitions.

Model: ``y = X beta + b_institution + b_participant + e`` with relative variances
``a_i = theta_1^2``, ``a_p = theta_2^2`` (lme4's relative-covariance parametrisation), so that per
institution ``V = I + a_i 1 1' + a_p (same participant)`` and ``Var(y) = sigma^2 V``.

Quantities (Kuznetsova, Brockhoff & Christensen, 2017, J. Stat. Softw. 82(13), section 3.2;
lmerTest 3.1's ``devfun_vp`` and ``get_covbeta``):

* per institution a Cholesky factor of ``V``; its log-diagonal gives ``log|V|``, and forward
  substitution whitens ``[X y]``; the Gram matrix of the whitened rows is ``[X y]' V^-1 [X y]``,
  whose Cholesky factor gives ``log|X'V^-1 X|`` and, as the square of its last diagonal
  element, ``r^2(theta) = min_beta (y - X beta)' V^-1 (y - X beta)``;
* the profiled REML criterion (lme4's ``REMLcrit``)
  ``d(theta) = log|V| + log|X'V^-1X| + (n-p) (1 + log(2 pi r^2 / (n-p)))``;
* the REML deviance in the variance parameters ``varpar = (theta_1, theta_2, sigma)`` (lmerTest's
  ``devfun_vp`` with ``reml = TRUE``, sigma NOT profiled out)
  ``D(varpar) = log|V| + log|X'V^-1X| + (n-p) log(2 pi sigma^2) + r^2(theta) / sigma^2``;
* ``C(varpar) = sigma^2 (X'V^-1X)^-1`` (lmerTest's ``get_covbeta``);
* ``A = 2 H^-1`` with ``H`` the Hessian of ``D`` at the optimum, ``g_i`` the gradient of
  ``C_ii`` in varpar, and ``df_i = 2 C_ii^2 / (g_i' A g_i)``, ``SE_i = sqrt(C_ii)``.

The optimum is found here too, in 40 digits: Newton's method on ``d(theta)`` started from lme4's
theta (tests/reference/engine/lme4.csv), with the central-difference gradient and Hessian below,
until the step is below 1e-20 relative; then ``sigma^2 = r^2 / (n - p)``, where ``dD/dsigma = 0``.

Derivatives are central differences with relative steps ``h_j = s |varpar_j|``, ``s = 1e-8``:
``D_jj ~ (D(+h_j) - 2 D + D(-h_j)) / h_j^2``, ``D_jk ~ (D(++) - D(+-) - D(-+) + D(--)) / (4 h_j h_k)``,
``dC/dv_j ~ (C(+h_j) - C(-h_j)) / (2 h_j)``; no Richardson extrapolation.

Error budget (relative, on df). Truncation: the central formulas are exact up to
``h^2 f'''' / 12`` (second) and ``h^2 f''' / 6`` (first derivatives), i.e. O(s^2) = 1e-16 times
a ratio of derivatives in ``log v`` of order 1. Rounding: 40 significant digits; the largest
cancellation is in ``r^2`` (whitened residuals of size 1e-3 against whitened outcomes of a few
units: up to ~10 digits lost), so ``D`` (about 1e4 in magnitude) is accurate to ~1e-30 absolute;
divided by ``h^2 |H_jj| ~ 1e-16 * 1e3`` that is ~1e-17 relative. Measured, rather than trusted
(and the reason for ``s = 1e-8`` rather than 1e-9, which trades truncation for rounding): halving
the step changes no df by more than 1.6e-16 relative (stored as ``df_half_step``; the generator
prints it), and rerunning in 60 digits (``--precision 60``) changes no df by more than 5e-18 and
theta, sigma, the SEs and the criterion not at all in their 25 stored digits. Newton's method
stops when its step is below 1e-20 relative; the gradient's O(s^2) truncation moves the optimum
by ~1e-16 relative in theta (stored ``max_scaled_deviance_gradient``, the largest
``|v_j dD/dv_j|``, is ~3e-13 at the optimum against ~1e-3 at lme4's theta).

Data enter as the exact binary values of the doubles in the csv files (``Decimal(float)``), the
same numbers the engine reads. Both designs are evaluated at two points: the optimum found here,
and lme4's theta (where lmerTest evaluated its numerical df), each with the profiled sigma;
tests/test_lmm.py compares the engine at the same points. Run from the repository root (writes
tests/reference/engine/satterthwaite_40_digits.csv and prints its run time, 15-25 s on one core)::

    .venv/bin/python tests/reference/satterthwaite_40_digits.py
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ENGINE = HERE / "engine"
OUTPUT = ENGINE / "satterthwaite_40_digits.csv"
CASES = ("tiny-residual", "thousands")
PRECISION = 40
RELATIVE_STEP = Decimal("1e-8")
PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494459")
VARPAR_NAMES = ("theta_institution", "theta_participant", "sigma")


@dataclass(frozen=True)
class Design:
    """Per institution: the participant of each row and the rows ``[x_1 .. x_p, y]`` as exact
    decimals."""

    institutions: tuple[tuple[tuple[str, ...], tuple[tuple[Decimal, ...], ...]], ...]
    terms: tuple[str, ...]
    n: int

    @property
    def p(self) -> int:
        return len(self.terms)


def load_design(frame: pd.DataFrame) -> Design:
    terms = tuple(c for c in frame.columns if c.startswith("x_"))
    institutions = []
    for _, group in frame.groupby("institution", sort=True):
        rows = tuple(tuple(Decimal(float(v)) for v in row) for row in group[[*terms, "y"]].to_numpy())
        institutions.append((tuple(group["participant"].astype(str)), rows))
    return Design(tuple(institutions), terms, len(frame))


def cholesky(matrix: list[list[Decimal]]) -> list[list[Decimal]]:
    """Lower-triangular L with L L' = matrix (symmetric positive definite)."""
    k = len(matrix)
    L = [[Decimal(0)] * k for _ in range(k)]
    for i in range(k):
        for j in range(i + 1):
            s = matrix[i][j] - sum((L[i][m] * L[j][m] for m in range(j)), Decimal(0))
            L[i][j] = s.sqrt() if i == j else s / L[j][j]
    return L


def lower_inverse(L: list[list[Decimal]]) -> list[list[Decimal]]:
    """Inverse of a lower-triangular matrix by forward substitution."""
    k = len(L)
    inverse = [[Decimal(0)] * k for _ in range(k)]
    for c in range(k):
        for i in range(c, k):
            s = (Decimal(1) if i == c else Decimal(0)) - sum((L[i][m] * inverse[m][c] for m in range(c, i)), Decimal(0))
            inverse[i][c] = s / L[i][i]
    return inverse


def symmetric_inverse(matrix: list[list[Decimal]]) -> list[list[Decimal]]:
    """Inverse of a symmetric positive definite matrix: (L L')^-1 = L^-T L^-1."""
    Li = lower_inverse(cholesky(matrix))
    k = len(matrix)
    return [[sum((Li[m][i] * Li[m][j] for m in range(max(i, j), k)), Decimal(0)) for j in range(k)]
            for i in range(k)]


@dataclass(frozen=True)
class Pieces:
    """What the REML quantities need at one theta: log|V|, log|X'V^-1X|, r^2 and (X'V^-1X)^-1."""

    logdet_v: Decimal
    logdet_x: Decimal
    r2: Decimal
    g_inverse: list[list[Decimal]]


def pieces_at(design: Design, theta: tuple[Decimal, Decimal]) -> Pieces:
    """Per institution: Cholesky of V = I + a_i 1 1' + a_p (same participant), forward
    substitution to whiten [X y], accumulate the Gram matrix; then its Cholesky factor."""
    p = design.p
    a_i, a_p = theta[0] ** 2, theta[1] ** 2
    gram = [[Decimal(0)] * (p + 1) for _ in range(p + 1)]
    logdet_v = Decimal(0)
    for participants, rows in design.institutions:
        k = len(rows)
        L = cholesky([[a_i + (a_p if participants[i] == participants[j] else 0) + (1 if i == j else 0)
                       for j in range(k)] for i in range(k)])
        logdet_v += 2 * sum((L[i][i].ln() for i in range(k)), Decimal(0))
        data = [list(row) for row in rows]
        for c in range(p + 1):
            for i in range(k):
                data[i][c] = (data[i][c] - sum((L[i][j] * data[j][c] for j in range(i)), Decimal(0))) / L[i][i]
        for r in range(p + 1):
            for c in range(r + 1):
                gram[r][c] += sum((data[i][r] * data[i][c] for i in range(k)), Decimal(0))
    for r in range(p + 1):
        for c in range(r + 1, p + 1):
            gram[r][c] = gram[c][r]
    L = cholesky(gram)  # of [X y]'V^-1[X y]: the leading p x p block factors X'V^-1X
    logdet_x = 2 * sum((L[i][i].ln() for i in range(p)), Decimal(0))
    G = [row[:p] for row in gram[:p]]
    return Pieces(logdet_v, logdet_x, L[p][p] ** 2, symmetric_inverse(G))


def profiled_criterion(design: Design, pieces: Pieces) -> Decimal:
    """lme4's REML criterion d(theta) (sigma profiled out)."""
    dof = design.n - design.p
    return pieces.logdet_v + pieces.logdet_x + dof * (1 + (2 * PI * pieces.r2 / dof).ln())


def reml_deviance(design: Design, pieces: Pieces, sigma: Decimal) -> Decimal:
    """lmerTest's devfun_vp (REML): the deviance at (theta, sigma), sigma not profiled."""
    sigma2 = sigma**2
    return (pieces.logdet_v + pieces.logdet_x + (design.n - design.p) * (2 * PI * sigma2).ln()
            + pieces.r2 / sigma2)


def beta_variances(pieces: Pieces, sigma: Decimal) -> list[Decimal]:
    """Diagonal of C = sigma^2 (X'V^-1X)^-1."""
    return [sigma**2 * pieces.g_inverse[i][i] for i in range(len(pieces.g_inverse))]


def reml_criterion_40_digits(frame: pd.DataFrame, theta, precision: int = PRECISION) -> Decimal:
    """The profiled REML criterion at ``theta`` in ``precision``-digit arithmetic."""
    with localcontext() as context:
        context.prec = precision
        design = load_design(frame)
        return profiled_criterion(design, pieces_at(design, tuple(Decimal(float(t)) for t in theta)))


class Evaluator:
    """Caches the per-theta pieces: sigma enters D and C in closed form, so stencil points that
    differ only in sigma cost nothing."""

    def __init__(self, design: Design):
        self.design = design
        self.cache: dict[tuple[Decimal, Decimal], Pieces] = {}

    def pieces(self, theta) -> Pieces:
        key = tuple(theta)
        if key not in self.cache:
            self.cache[key] = pieces_at(self.design, key)
        return self.cache[key]

    def deviance(self, varpar) -> Decimal:
        return reml_deviance(self.design, self.pieces(varpar[:2]), varpar[2])

    def variances(self, varpar) -> list[Decimal]:
        return beta_variances(self.pieces(varpar[:2]), varpar[2])

    def criterion(self, theta) -> Decimal:
        return profiled_criterion(self.design, self.pieces(theta))


def shifted(x, steps: dict[int, Decimal]):
    return tuple(v + steps.get(j, Decimal(0)) for j, v in enumerate(x))


def gradient_hessian(f, x, relative_step: Decimal):
    """Central-difference gradient and Hessian of f at x, steps h_j = relative_step |x_j|."""
    k = len(x)
    h = [relative_step * abs(v) for v in x]
    f0 = f(x)
    gradient, hessian = [Decimal(0)] * k, [[Decimal(0)] * k for _ in range(k)]
    for j in range(k):
        up, down = f(shifted(x, {j: h[j]})), f(shifted(x, {j: -h[j]}))
        gradient[j] = (up - down) / (2 * h[j])
        hessian[j][j] = (up - 2 * f0 + down) / h[j] ** 2
        for m in range(j):
            value = (f(shifted(x, {j: h[j], m: h[m]})) - f(shifted(x, {j: h[j], m: -h[m]}))
                     - f(shifted(x, {j: -h[j], m: h[m]})) + f(shifted(x, {j: -h[j], m: -h[m]})))
            hessian[j][m] = hessian[m][j] = value / (4 * h[j] * h[m])
    return gradient, hessian


def solve(matrix: list[list[Decimal]], rhs: list[Decimal]) -> list[Decimal]:
    """Gaussian elimination with partial pivoting (small systems)."""
    k = len(rhs)
    a = [list(row) + [rhs[i]] for i, row in enumerate(matrix)]
    for c in range(k):
        pivot = max(range(c, k), key=lambda r: abs(a[r][c]))
        a[c], a[pivot] = a[pivot], a[c]
        for r in range(c + 1, k):
            factor = a[r][c] / a[c][c]
            a[r] = [a[r][m] - factor * a[c][m] for m in range(k + 1)]
    x = [Decimal(0)] * k
    for r in reversed(range(k)):
        x[r] = (a[r][k] - sum((a[r][m] * x[m] for m in range(r + 1, k)), Decimal(0))) / a[r][r]
    return x


def optimum(evaluator: Evaluator, start, relative_step: Decimal, max_steps: int = 20):
    """Newton's method on the profiled criterion from ``start`` (an interior optimum)."""
    theta = tuple(start)
    for _ in range(max_steps):
        gradient, hessian = gradient_hessian(evaluator.criterion, theta, relative_step)
        step = solve(hessian, [-g for g in gradient])
        theta = tuple(t + s for t, s in zip(theta, step))
        if max(abs(s / t) for s, t in zip(step, theta)) < Decimal("1e-20"):
            return theta
    raise RuntimeError(f"Newton's method did not converge in {max_steps} steps (last step {step})")


def satterthwaite(evaluator: Evaluator, varpar, relative_step: Decimal) -> tuple[list[Decimal], list[Decimal]]:
    """df_i = 2 C_ii^2 / (g_i' A g_i), A = 2 H^-1; and SE_i = sqrt(C_ii), at varpar."""
    _, hessian = gradient_hessian(evaluator.deviance, varpar, relative_step)
    h = [relative_step * abs(v) for v in varpar]
    up = [evaluator.variances(shifted(varpar, {j: h[j]})) for j in range(3)]
    down = [evaluator.variances(shifted(varpar, {j: -h[j]})) for j in range(3)]
    variances = evaluator.variances(varpar)
    dfs = []
    for i, c in enumerate(variances):
        g = [(up[j][i] - down[j][i]) / (2 * h[j]) for j in range(3)]
        # g' A g = 2 g' H^-1 g
        dfs.append(2 * c**2 / (2 * sum((a * b for a, b in zip(g, solve(hessian, g))), Decimal(0))))
    return dfs, [c.sqrt() for c in variances]


def lme4_theta(case: str) -> tuple[float, float]:
    table = pd.read_csv(ENGINE / "lme4.csv", keep_default_na=False)
    rows = table[(table["case"] == case) & (table["quantity"] == "theta")].set_index("term")["value"]
    return float(rows["institution"]), float(rows["institution:participant"])


def reference(case: str, precision: int = PRECISION, relative_step: Decimal = RELATIVE_STEP) -> list[dict]:
    """The exact df and SEs of one design at two points: the REML optimum (found here) and
    lme4's theta (from lme4.csv, where lmerTest evaluated its numerical df); sigma is the
    profiled one at each theta, sqrt(r^2 / (n - p))."""
    rows = []
    with localcontext() as context:
        context.prec = precision
        design = load_design(pd.read_csv(ENGINE / f"{case}.csv"))
        evaluator = Evaluator(design)
        start = tuple(Decimal(t) for t in lme4_theta(case))
        for point, theta in (("optimum", optimum(evaluator, start, relative_step)), ("lme4_theta", start)):
            sigma = (evaluator.pieces(theta).r2 / (design.n - design.p)).sqrt()
            varpar = (*theta, sigma)
            deviance_gradient, _ = gradient_hessian(evaluator.deviance, varpar, relative_step)
            dfs, ses = satterthwaite(evaluator, varpar, relative_step)
            half_dfs, _ = satterthwaite(evaluator, varpar, relative_step / 2)
            # |v_j dD/dv_j|: zero at the optimum up to the gradient's O(s^2) truncation.
            scaled_gradient = max(abs(g * v) for g, v in zip(deviance_gradient, varpar))
            criterion = evaluator.criterion(theta)
            for term, df, se, half_df in zip(design.terms, dfs, ses, half_dfs):
                rows.append({"case": case, "point": point, "term": term, "df": df, "std_error": se,
                             "df_half_step": half_df, **dict(zip(VARPAR_NAMES, varpar)),
                             "reml_criterion": criterion, "max_scaled_deviance_gradient": scaled_gradient})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precision", type=int, default=PRECISION, help="significant digits (default 40)")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = [row for case in CASES for row in reference(case, args.precision)]
    # 25 significant digits: far beyond double precision, stable across reruns.
    with args.out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.25g}" if isinstance(v, Decimal) else v) for k, v in row.items()})
    change = max(abs(r["df_half_step"] / r["df"] - 1) for r in rows)
    print(f"largest relative change of a df when the step is halved: {change:.1e}")
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s ({args.precision} digits)")


if __name__ == "__main__":
    main()
