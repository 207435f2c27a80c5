"""Linear mixed models by REML for nested random effects, with Satterthwaite degrees of freedom.

``y = X beta + Z b + e`` with ``b ~ N(0, sigma^2 Lambda Lambda')`` and ``e ~ N(0, sigma^2 I)``, in
the relative-covariance parametrisation of lme4 (Bates, Maechler, Bolker & Walker, 2015, J. Stat.
Softw. 67(1), section 3): ``theta`` holds the lower-triangular Cholesky factor of each random
term's relative covariance, diagonal elements bounded below by 0 (a variance component of exactly
0 is a valid, "singular", optimum).

The engine is split by concern, as lme4 and MixedModels.jl separate them:

- ``structure``: random terms, the theta layout and the exact whitening ``W'W = V^-1`` (nested
  Woodbury identities for nested intercepts; a batched penalised least-squares map for one term
  with random slopes), linear in the data;
- ``jet``: second-order forward-mode derivatives of array expressions;
- ``criterion``: the profiled REML criterion with its exact gradient and Hessian, cached by phi;
- ``optimisation``: L-BFGS-B, the Newton polish with its rounding-noise stopping rule, the
  boundary snap and lme4's convergence check;
- ``inference``: Satterthwaite df as lmerTest computes them (exact derivatives), conditional
  modes and residuals, t inference;
- ``model``: ``NestedLmm``, the class joining them.
"""

from dpo_eval.analysis.lmm.inference import EIGENVALUE_TOLERANCE, t_inference
from dpo_eval.analysis.lmm.model import NestedLmm
from dpo_eval.analysis.lmm.optimisation import GRADIENT_TOLERANCE, SINGULAR_TOLERANCE, LmmFit
from dpo_eval.analysis.lmm.structure import RandomTerm

__all__ = ["EIGENVALUE_TOLERANCE", "GRADIENT_TOLERANCE", "SINGULAR_TOLERANCE", "LmmFit", "NestedLmm",
           "RandomTerm", "t_inference"]
