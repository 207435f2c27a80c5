"""Power analysis for planning a study: how many schools does the primary analysis need?

The approach of R's ``simr::powerCurve`` (Green & MacLeod, 2016, Methods Ecol. Evol. 7:493):
simulate many studies from the primary model with the planned design and the expected effects,
fit each with the pipeline's own model (``models.model_frame``, ``models.fit_model``: REML,
Satterthwaite inference, the pipeline's covariates), adjust the domains' p-values by Holm (1979)
as the analysis plan does, and count rejections, for each number of schools of a grid.

Data-generating model, per domain *d*, school *s*, participant *j* and wave *w* (pre 0, post 1),
the primary model of ``dpo_eval.analysis.models`` with the generator's design (``dpo_eval.simulate``:
team sizes ``2 + Poisson(mean - 2)``, roles and years in management, schools allocated half to
the program; a participant misses the pre wave with probability ``missing_pre`` and the post
wave with probability ``attrition_post``)::

    score = baseline + time_effect * post + did_d * post * program + u_s + v_sj + e_sjw
    u_s ~ N(0, tau_s^2),  v_sj ~ N(0, tau_p^2),  e_sjw ~ N(0, sigma^2)

set by the intraclass correlations as the pipeline reports them (``model_checks.csv``):
``icc_institution = tau_s^2 / T`` and ``icc_participant = (tau_s^2 + tau_p^2) / T`` with
``T = tau_s^2 + tau_p^2 + sigma^2`` and ``sigma`` the residual SD. The school effect is shared
by the domains, the participant effects are drawn per domain (as in the generator).

Power is the share of replicates whose Holm-adjusted p is below alpha, with its Clopper-Pearson
(1934, Biometrika 26:404) 95% interval. The analytic approximation (``analytic_power``) is the
design effect of a closed-cohort cluster design analysed by change (Hooper, Teerenstra, de Hoop
& Eldridge, 2016, Stat. Med. 35:4718): with ``m`` participants per school observed at both waves,
``Var(DiD) = 4 T DE / (n m)`` for ``n`` schools per arm and ``DE = (1 + (m - 1) rho) (1 - r)``,
``rho = icc_institution`` and ``r = (m tau_s^2 + tau_p^2) / (m tau_s^2 + tau_p^2 + sigma^2)`` the
correlation of a school's pre and post means; power from the noncentral t distribution with
``2 n m - 2`` degrees of freedom at level ``alpha / k`` for ``k`` domains (Bonferroni: a lower
bound of Holm's power, equal to it for one domain). It is exact for complete data with equal
team sizes and no covariates, and ignores the participants seen at one wave only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from dpo_eval.analysis import models
from dpo_eval.analysis.multiplicity import adjust, significant
from dpo_eval.simulate import ROLE_SHARES, ROLES
from dpo_eval.core.study import COHORTS, MODEL_WAVES

MONTE_CARLO_LEVEL = 0.95


class PowerDesignError(ValueError):
    """The planned design is impossible; the message names the setting and its valid range."""


@dataclass(frozen=True)
class PlannedDesign:
    """A planned study (config/power.yaml)."""

    did: dict[str, float]
    icc_institution: float
    icc_participant: float
    residual_sd: float
    team_size: float = 4.0
    team_size_distribution: str = "poisson"
    missing_pre: float = 0.03
    attrition_post: float = 0.10
    covariates: tuple[str, ...] = ("role", "years_in_management")
    alpha: float = 0.05
    p_adjust: str = "holm"
    baseline: float = 3.2
    time_effect: float = 0.1

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.icc_institution <= self.icc_participant < 1,
             "icc_institution and icc_participant: need 0 <= icc_institution <= icc_participant < 1"),
            (self.residual_sd > 0, "residual_sd: must be positive"),
            (self.team_size >= 2 if self.team_size_distribution == "poisson" else self.team_size >= 1,
             "team_size: at least 2 with team_size_distribution 'poisson' (2 + Poisson(mean - 2)), 1 when 'fixed'"),
            (self.team_size_distribution in ("poisson", "fixed"),
             "team_size_distribution: 'poisson' or 'fixed'"),
            (0 <= self.missing_pre < 1 and 0 <= self.attrition_post < 1,
             "missing_pre and attrition_post: shares in [0, 1)"),
            (0 < self.alpha < 1, "alpha: in (0, 1)"),
            (self.p_adjust in ("holm", "bonferroni"), "p_adjust: 'holm' or 'bonferroni'"),
            (bool(self.did), "did: name at least one domain and its expected difference-in-differences"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise PowerDesignError("config/power.yaml: " + "; ".join(problems))

    @property
    def variances(self) -> tuple[float, float, float]:
        """(tau_s^2, tau_p^2, sigma^2) from the ICCs and the residual SD."""
        sigma2 = self.residual_sd**2
        total = sigma2 / (1 - self.icc_participant)
        return (self.icc_institution * total,
                (self.icc_participant - self.icc_institution) * total, sigma2)

    @property
    def completers_per_school(self) -> float:
        """Expected participants per school with both waves."""
        return self.team_size * (1 - self.missing_pre) * (1 - self.attrition_post)


def design_from_config(design: dict) -> PlannedDesign:
    """The ``power.design`` section of config/power.yaml."""
    return PlannedDesign(**{**design, "did": dict(design["did"]),
                            "covariates": tuple(design.get("covariates", ()))})


# --------------------------------------------------------------------------- simulation


def replicate_rng(seed: int, schools_per_arm: int, replicate: int) -> np.random.Generator:
    """Independent stream per (grid point, replicate), whatever the batching."""
    return np.random.default_rng([seed, schools_per_arm, replicate])


def simulate_scores(design: PlannedDesign, schools_per_arm: int, rng: np.random.Generator) -> pd.DataFrame:
    """Scale scores of one simulated study in the pipeline's layout (``scoring.scale_scores``)."""
    n_schools = 2 * schools_per_arm
    tau_s2, tau_p2, sigma2 = design.variances
    cohorts = np.repeat(COHORTS, schools_per_arm)
    if design.team_size_distribution == "poisson":
        sizes = 2 + rng.poisson(design.team_size - 2, n_schools)
    else:
        sizes = np.full(n_schools, int(round(design.team_size)))
    school_effect = rng.normal(0, np.sqrt(tau_s2), n_schools)
    school = np.repeat(np.arange(n_schools), sizes)
    n = school.size
    people = pd.DataFrame({
        "participant_key": [f"P{i:05d}" for i in range(n)],
        "institution": [f"SCH{s + 1:03d}" for s in school],
        "cohort": cohorts[school],
        "role": rng.choice(ROLES, n, p=ROLE_SHARES),
        "years_in_management": np.minimum(35, rng.gamma(2.0, 4.0, n)).astype(int),
    })
    present = {"pre": rng.random(n) >= design.missing_pre, "post": rng.random(n) >= design.attrition_post}
    program = (people["cohort"] == "program").to_numpy(float)
    frames = []
    for domain, did in design.did.items():
        level = design.baseline + school_effect[school] + rng.normal(0, np.sqrt(tau_p2), n)
        for post, wave in enumerate(MODEL_WAVES):
            score = (level + (design.time_effect + did * program) * post
                     + rng.normal(0, np.sqrt(sigma2), n))
            keep = present[wave]
            frames.append(people[keep].assign(wave=wave, domain=domain, score=score[keep]))
    return pd.concat(frames, ignore_index=True)


def fit_replicate(scores: pd.DataFrame, design: PlannedDesign) -> list[dict]:
    """The DiD of every domain, its p-value and the Holm-adjusted p across the domains."""
    covariates = list(design.covariates)
    rows = []
    for domain in design.did:
        frame = models.model_frame(scores, domain, covariates)
        fit, _, _ = models.fit_model(frame, models.primary_formula(covariates))
        did = models.contrast(fit, models.DID_TERM)
        rows.append({"domain": domain, "estimate": did["estimate"], "std_error": did["std_error"],
                     "df": did["df"], "p_value": did["p_value"], "converged": bool(fit.converged)})
    adjusted = adjust([row["p_value"] for row in rows], design.p_adjust)
    for row, p_adjusted in zip(rows, adjusted):
        row["p_adjusted"] = float(p_adjusted)
        row["rejected"] = significant(p_adjusted, design.alpha)
    return rows


def power_batch(design: PlannedDesign, schools_per_arm: int, replicates: list[int], seed: int) -> pd.DataFrame:
    """One job of the workflow: the replicates ``replicates`` at one number of schools."""
    rows = []
    for replicate in replicates:
        scores = simulate_scores(design, schools_per_arm, replicate_rng(seed, schools_per_arm, replicate))
        participants = int(scores["participant_key"].nunique())
        for row in fit_replicate(scores, design):
            rows.append({"schools_per_arm": schools_per_arm, "replicate": replicate,
                         "participants": participants, **row})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- summaries


def clopper_pearson(successes: int, trials: int, level: float = MONTE_CARLO_LEVEL) -> tuple[float, float]:
    """Exact binomial interval of a proportion (Clopper & Pearson, 1934)."""
    tail = (1 - level) / 2
    low = 0.0 if successes == 0 else float(stats.beta.ppf(tail, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(stats.beta.ppf(1 - tail, successes + 1, trials - successes))
    return low, high


def analytic_power(design: PlannedDesign, schools_per_arm: int, did: float) -> float:
    """Power of the DiD by the closed-cohort design effect (see the module docstring)."""
    tau_s2, tau_p2, sigma2 = design.variances
    total = tau_s2 + tau_p2 + sigma2
    m = design.completers_per_school
    rho = tau_s2 / total
    r = (m * tau_s2 + tau_p2) / (m * tau_s2 + tau_p2 + sigma2)
    design_effect = (1 + (m - 1) * rho) * (1 - r)
    se = np.sqrt(4 * total * design_effect / (schools_per_arm * m))
    df = 2 * schools_per_arm * m - 2
    level = design.alpha / len(design.did)
    critical = stats.t.ppf(1 - level / 2, df)
    noncentrality = did / se
    return float(stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality))


ALL_DOMAINS = "all"


def read_replicates(paths: list[str]) -> pd.DataFrame:
    """The replicates of every batch of the workflow, in one table."""
    return pd.concat([pd.read_csv(path) for path in paths], ignore_index=True)


def power_table(replicates: pd.DataFrame, design: PlannedDesign) -> pd.DataFrame:
    """Per number of schools and domain, and for all domains at once ("all": every domain's
    Holm-adjusted test rejects): power with its Monte Carlo interval, the analytic
    approximation, the mean estimate and the expected number of participants."""
    rows = []
    for schools, at in replicates.groupby("schools_per_arm", sort=True):
        joint = at.groupby("replicate")["rejected"].all()
        groups = [(domain, at[at["domain"] == domain]["rejected"], at[at["domain"] == domain])
                  for domain in design.did]
        for domain, rejected, own in [*groups, (ALL_DOMAINS, joint, None)]:
            successes, trials = int(rejected.sum()), int(rejected.size)
            low, high = clopper_pearson(successes, trials)
            rows.append({
                "schools_per_arm": int(schools), "schools": 2 * int(schools), "domain": domain,
                "expected_did": design.did.get(domain, np.nan),
                "replicates": trials, "rejections": successes, "power": successes / trials,
                "mc_low": low, "mc_high": high,
                "analytic_power": (analytic_power(design, int(schools), design.did[domain])
                                   if domain != ALL_DOMAINS else np.nan),
                "mean_estimate": float(own["estimate"].mean()) if own is not None else np.nan,
                "mean_participants": float(at.groupby("replicate")["participants"].first().mean()),
                "not_converged": int((~own["converged"].astype(bool)).sum()) if own is not None
                else int((~at["converged"].astype(bool)).sum()),
            })
    return pd.DataFrame(rows)


def schools_needed(table: pd.DataFrame, target: float) -> dict[str, int | None]:
    """Per domain (and "all"), the smallest number of schools per arm of the grid whose
    estimated power reaches ``target`` (None when no grid point does)."""
    needed = {}
    for domain, own in table.groupby("domain", sort=False):
        reached = own.loc[own["power"] >= target, "schools_per_arm"]
        needed[domain] = int(reached.min()) if not reached.empty else None
    return needed
