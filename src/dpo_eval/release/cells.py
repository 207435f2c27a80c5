"""The cells every report would show, as rows of the release manifest (dpo_eval.release.manifest): the
school reports' participation, scores at the level each school can be shown at, and needs; the
evaluation report's tables and figures. The report contexts fill their templates from these
rows (value, n and status), so the manifest is, by construction, what the PDFs print.

A school report's scores are shown at the first level of ``SCHOOL_LEVELS`` whose entry and
exit cells of the analysed domains are all shown: the team itself, the schools of its
municipality in its cohort, or its whole cohort. A pool never mixes the cohorts (a programme
school is never shown a figure made mostly of comparison teams). A level whose group the
disclosure control suppressed is skipped: the school moves to the next level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dpo_eval.release.manifest import ALL, ANY, SETTLEMENT, atoms_from_scores, control, group_keys
from dpo_eval.core.study import COHORTS, MODEL_WAVES, WAVES

SCHOOL_LEVELS = ("team", "municipality_cohort", "cohort")
# How much a report needs a cell (higher: suppressed last). A school's own figure, then the
# totals of the evaluation report's tables, then its other cells and the region benchmarks, and
# last the pooled stand-ins of school reports (they have a next level to fall back to).
PRIORITY = {"stand_in": 1, "table": 2, "team": 3, "total": 4}
NEEDS_WAVE = "needs"
SCHOOL = "school"


def rounded(value: float, digits: int = 2) -> float:
    """The value as a report prints it with ``digits`` decimals (``reporting.formatting``):
    differences of printed numbers are computed from these, so that the page adds up and the
    manifest holds what the PDFs show."""
    return float(f"{float(value):.{digits}f}")


def need_domain(area: str) -> str:
    return f"need:{area}"


def school_report(institution: str) -> str:
    return f"institutions/{institution}"


def evaluation_report(lang: str) -> str:
    return f"evaluation.{lang}"


def needs_atoms(needs: pd.DataFrame, registry: pd.DataFrame) -> pd.DataFrame:
    """Distinct needs respondents per (need:area, "needs", institution, -, stakeholder as role,
    settlement), and per stakeholder group over all areas (``need:any``), the atoms of the
    needs cells."""
    rows = needs.dropna(subset=["value"])[["respondent_key", "area", "institution", "stakeholder"]]
    every = pd.concat([rows.assign(domain=rows["area"].map(need_domain)), rows.assign(domain=need_domain(ANY))])
    every = every.drop_duplicates(["respondent_key", "domain"])
    atoms = every.groupby(["domain", "institution", "stakeholder"]).size().rename("n").reset_index()
    atoms["settlement"] = atoms["institution"].map(registry.set_index("id")["settlement"]).fillna("")
    return atoms.rename(columns={"stakeholder": "role"}).assign(wave=NEEDS_WAVE, cohort="none")[
        ["domain", "wave", "institution", "cohort", "role", "settlement", "n"]]


def _cells(frame: pd.DataFrame, **fixed) -> pd.DataFrame:
    """Rows of the manifest with control columns: ``fixed`` fills what ``frame`` lacks."""
    out = frame.copy()
    for column, value in fixed.items():
        if column not in out:
            out[column] = value
    defaults = {"cohort": ALL, "role": ALL, "partition": "", "exempt": False, "printed": True, "label": ""}
    for column, value in defaults.items():
        if column not in out:
            out[column] = value
    return out[["report", "item", "domain", "wave", "institutions", "cohort", "role", "n", "value",
                "partition", "priority", "exempt", "printed", "label"]]


# --------------------------------------------------------------------------- school reports


def school_frame(scores: pd.DataFrame, registry: pd.DataFrame) -> pd.DataFrame:
    """One row per school of the registry: id, municipality, settlement and the cohort of its
    participants (None without participants, "all" if they were in both)."""
    schools = registry.loc[registry["type"] == SCHOOL, ["id", "municipality", "settlement"]].copy()
    pairs = scores[["institution", "cohort"]].drop_duplicates()
    counts = pairs["institution"].value_counts()
    cohorts = pairs.drop_duplicates("institution").set_index("institution")["cohort"]
    cohorts = cohorts.where(counts.reindex(cohorts.index) == 1, ALL)
    schools["cohort"] = schools["id"].map(cohorts)
    return schools.sort_values("id").reset_index(drop=True)


def score_sums(scores: pd.DataFrame) -> pd.DataFrame:
    """Respondents and the sum of their scores per institution, cohort, domain and wave."""
    rows = scores[scores["wave"].isin(WAVES)].dropna(subset=["score"])
    return rows.groupby(["institution", "cohort", "domain", "wave"])["score"].agg(n="count", total="sum").reset_index()


def level_candidates(sums: pd.DataFrame, schools: pd.DataFrame) -> pd.DataFrame:
    """For every school with participants and every level: the level's group per domain and
    wave (institutions, cohort), its respondents, mean and the school's own respondents."""
    members = schools.dropna(subset=["cohort"])
    team = sums.groupby(["institution", "domain", "wave"])[["n", "total"]].sum().reset_index()
    team = team.rename(columns={"institution": "id"}).merge(members[["id", "cohort"]], on="id")
    team = team.assign(level="team", institutions=team["id"])
    pool_ids = (members.groupby(["municipality", "cohort"])["id"].agg(lambda ids: ";".join(sorted(ids)))
                .rename("institutions").reset_index())
    with_place = sums.merge(schools[["id", "municipality"]].rename(columns={"id": "institution"}), on="institution")
    local = with_place.groupby(["municipality", "cohort", "domain", "wave"])[["n", "total"]].sum().reset_index()
    local = (members[["id", "municipality", "cohort"]].merge(local, on=["municipality", "cohort"])
             .merge(pool_ids, on=["municipality", "cohort"]).assign(level="municipality_cohort"))
    whole = sums.groupby(["cohort", "domain", "wave"])[["n", "total"]].sum().reset_index()
    whole = members[["id", "cohort"]].merge(whole, on="cohort").assign(level="cohort", institutions=ALL)
    frame = pd.concat([team, local, whole], ignore_index=True)[
        ["id", "level", "domain", "wave", "institutions", "cohort", "n", "total"]]
    own = team[["id", "domain", "wave", "n"]].rename(columns={"n": "own"})
    frame = frame.merge(own, on=["id", "domain", "wave"], how="left").fillna({"own": 0})
    frame["mean"] = frame["total"] / frame["n"]
    frame["key"] = group_keys(frame.assign(role=ALL))
    return frame


def choose_levels(candidates: pd.DataFrame, domains: list[str], min_cell: int,
                  suppressed: dict[str, str], core_waves: tuple[str, ...] = MODEL_WAVES) -> pd.Series:
    """The level of each school: the first of SCHOOL_LEVELS whose core cells (``domains`` at
    ``core_waves``) all exist, hold ``min_cell`` respondents (a pool: besides the school's own
    team too) and were not suppressed; "none" where no level qualifies."""
    core = candidates[candidates["domain"].isin(domains) & candidates["wave"].isin(core_waves)]
    fine = ((core["n"] >= min_cell) & ((core["level"] == "team") | (core["n"] - core["own"] >= min_cell))
            & ~core["key"].isin(list(suppressed)))
    needed = len(domains) * len(core_waves)
    passed = core.assign(fine=fine).groupby(["id", "level"])["fine"].agg(["sum", "size"])
    passed = passed[(passed["sum"] == needed) & (passed["size"] == needed)].reset_index()
    passed["order"] = passed["level"].map({level: i for i, level in enumerate(SCHOOL_LEVELS)})
    first = passed.sort_values(["id", "order"]).drop_duplicates("id").set_index("id")["level"]
    return first


def school_cells(scores: pd.DataFrame, needs: pd.DataFrame, registry: pd.DataFrame, domains: list[str],
                 min_cell: int, suppressed: dict[str, str]) -> tuple[pd.DataFrame, pd.Series]:
    """Every school report's cells (and each school's level: a Series id -> level)."""
    schools = school_frame(scores, registry)
    candidates = level_candidates(score_sums(scores), schools)
    levels = choose_levels(candidates, domains, min_cell, suppressed).reindex(schools["id"]).fillna("none")
    chosen = candidates.merge(levels.rename("level").rename_axis("id").reset_index(), on=["id", "level"])
    report = chosen["id"].map(school_report)
    team = chosen["level"] == "team"
    scores_shown = _cells(chosen.assign(report=report, item="scores", value=chosen["mean"],
                                        priority=np.where(team, PRIORITY["team"], PRIORITY["stand_in"]),
                                        partition=np.where(team, "team", "")))
    region = score_sums(scores).groupby(["domain", "wave"])[["n", "total"]].sum().reset_index()
    region["value"] = region["total"] / region["n"]
    with_region = schools[["id"]].merge(region, how="cross")
    region_cells = _cells(with_region.assign(report=with_region["id"].map(school_report), item="scores_region",
                                             institutions=ALL, priority=PRIORITY["table"]))
    parts = [scores_shown, region_cells, known_team_cells(scores, schools),
             participation_cells(scores, schools), school_needs_cells(needs, schools)]
    return pd.concat(parts, ignore_index=True), levels


def known_team_cells(scores: pd.DataFrame, schools: pd.DataFrame) -> pd.DataFrame:
    """What each school knows without any report: its own team, per domain and wave (not
    printed; exempt: the control keeps every shown pool at least ``min_cell`` larger)."""
    rows = scores[scores["institution"].isin(schools["id"])].dropna(subset=["score"])
    own = rows.groupby(["institution", "domain", "wave"])["participant_key"].nunique().rename("n").reset_index()
    own["cohort"] = own["institution"].map(schools.set_index("id")["cohort"])
    return _cells(own.assign(report=own["institution"].map(school_report), item="own_team",
                             institutions=own["institution"], value=np.nan, priority=PRIORITY["team"],
                             exempt=True, printed=False, partition="team"))


def participation_cells(scores: pd.DataFrame, schools: pd.DataFrame) -> pd.DataFrame:
    """Each school's respondents per wave (printed although small: the school knows who took
    part; exempt) and the mean per school of the region (region total / number of schools)."""
    rows = scores[scores["wave"].isin(WAVES)].dropna(subset=["score"])
    own = rows.groupby(["institution", "wave"])["participant_key"].nunique()
    grid = pd.MultiIndex.from_product([schools["id"], list(WAVES)], names=["institution", "wave"])
    own = own.reindex(grid, fill_value=0).rename("n").reset_index()
    own["cohort"] = own["institution"].map(schools.set_index("id")["cohort"]).fillna(ALL)
    team = _cells(own.assign(report=own["institution"].map(school_report), item="participation", domain=ANY,
                             institutions=own["institution"], value=own["n"].astype(float),
                             priority=PRIORITY["team"], exempt=True))
    team = team[team["n"] > 0]
    total = rows.groupby("wave")["participant_key"].nunique().reindex(list(WAVES), fill_value=0)
    region = pd.DataFrame({"wave": total.index, "n": total.to_numpy(),
                           "value": total.to_numpy() / max(len(schools), 1)})
    region = schools[["id"]].merge(region, how="cross")
    region = _cells(region.assign(report=region["id"].map(school_report), item="participation_region",
                                  domain=ANY, institutions=ALL, priority=PRIORITY["table"]))
    return pd.concat([team, region[region["n"] > 0]], ignore_index=True)


def school_needs_cells(needs: pd.DataFrame, schools: pd.DataFrame) -> pd.DataFrame:
    """Needs of each school's own respondents (known to it), of the schools of its settlement
    type and of all schools, per area."""
    rows = needs[(needs["stakeholder"] == SCHOOL)].dropna(subset=["value"])
    by_school = rows.groupby(["institution", "area"])["value"].agg(n="count", total="sum").reset_index()
    by_school = by_school.merge(schools[["id", "settlement"]].rename(columns={"id": "institution"}), on="institution")
    similar = by_school.groupby(["settlement", "area"])[["n", "total"]].sum().reset_index()
    region = by_school.groupby("area")[["n", "total"]].sum().reset_index()
    report = schools[["id", "settlement"]]
    own = report.merge(by_school.rename(columns={"institution": "id"}), on=["id", "settlement"])
    own_cells = _cells(own.assign(report=own["id"].map(school_report), item="needs_own",
                                  domain=own["area"].map(need_domain), wave=NEEDS_WAVE, institutions=own["id"],
                                  role=SCHOOL, value=own["total"] / own["n"], priority=PRIORITY["team"],
                                  partition="needs_team"))
    known = own_cells.assign(item="own_team", exempt=True, printed=False, value=np.nan)
    pooled = report.merge(similar, on="settlement")
    pooled["institutions"] = SETTLEMENT + pooled["settlement"]
    pooled_cells = _cells(pooled.assign(report=pooled["id"].map(school_report), item="needs_similar",
                                        domain=pooled["area"].map(need_domain), wave=NEEDS_WAVE, role=SCHOOL,
                                        value=pooled["total"] / pooled["n"], priority=PRIORITY["stand_in"]))
    everyone = report[["id"]].merge(region, how="cross")
    region_cells = _cells(everyone.assign(report=everyone["id"].map(school_report), item="needs_region",
                                          domain=everyone["area"].map(need_domain), wave=NEEDS_WAVE,
                                          institutions=ALL, role=SCHOOL, value=everyone["total"] / everyone["n"],
                                          priority=PRIORITY["table"]))
    return pd.concat([own_cells, known, pooled_cells, region_cells], ignore_index=True)


# --------------------------------------------------------------------------- evaluation report


def _melt(frame: pd.DataFrame, report: str, item: str, columns: list[str], **fixed) -> pd.DataFrame:
    """One cell per row of ``frame`` and value column (item "<item>:<column>"); missing values
    are not printed, so they are not cells."""
    long = frame.melt(id_vars=[c for c in frame.columns if c not in columns], value_vars=columns,
                      var_name="statistic", value_name="value").dropna(subset=["value"])
    long = long.assign(report=report, item=item + ":" + long["statistic"].astype(str))
    return _cells(long, **fixed)


def institutions_with(scores: pd.DataFrame, registry: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per cohort and value of a registry ``column`` (municipality, settlement): the institutions
    whose participants the cohort's group of that value pools."""
    places = registry[["id", column]].rename(columns={"id": "institution", column: "place"})
    pairs = scores[["institution", "cohort"]].drop_duplicates().merge(places, on="institution")
    return (pairs.groupby(["cohort", "place"])["institution"].agg(lambda i: ";".join(sorted(i)))
            .rename("institutions").reset_index())


def sample_cells(tables: dict, scores: pd.DataFrame, registry: pd.DataFrame, report: str) -> pd.DataFrame:
    """The sample table: participants, institutions and municipalities per cohort (totals), the
    role and settlement categories (disjoint families) and years in management (mean, SD)."""
    sample = tables["sample"].copy()
    sample["level"] = sample["level"].fillna("")
    totals = sample[sample["characteristic"].isin(["participants", "institutions", "municipalities"])]
    participants = sample[sample["characteristic"] == "participants"].set_index("cohort")["n"]
    totals = totals.assign(n=totals["cohort"].map(participants), value=totals["n"].astype(float),
                           item="sample:" + totals["characteristic"])
    parts = [_cells(totals, report=report, domain=ANY, wave=ANY, institutions=ALL, priority=PRIORITY["total"])]
    roles = sample[sample["characteristic"] == "role"]
    parts.append(_melt(roles.assign(count=roles["n"].astype(float))[["cohort", "level", "n", "count", "share"]]
                       .rename(columns={"level": "role"}), report, "sample:role", ["count", "share"],
                       domain=ANY, wave=ANY, institutions=ALL, partition="sample:role", priority=PRIORITY["table"]))
    settlements = sample[sample["characteristic"] == "settlement"]
    settlements = settlements.assign(institutions=SETTLEMENT + settlements["level"].astype(str))
    parts.append(_melt(settlements.assign(count=settlements["n"].astype(float), label=settlements["level"])[
        ["cohort", "institutions", "label", "n", "count", "share"]], report, "sample:settlement", ["count", "share"],
        domain=ANY, wave=ANY, partition="sample:settlement", priority=PRIORITY["table"]))
    years = sample[sample["characteristic"] == "years_in_management"][["cohort", "n", "mean", "sd"]]
    parts.append(_melt(years, report, "sample:years_in_management", ["mean", "sd"], domain=ANY, wave=ANY,
                       institutions=ALL, priority=PRIORITY["table"]))
    return pd.concat(parts, ignore_index=True)


def municipality_cells(tables: dict, scores: pd.DataFrame, registry: pd.DataFrame, report: str) -> pd.DataFrame:
    """Participants per municipality and cohort (a family of disjoint cells) and the totals."""
    table = tables["municipalities"].merge(institutions_with(scores, registry, "municipality"),
                                           left_on=["cohort", "municipality"], right_on=["cohort", "place"])
    cells = _cells(table.assign(report=report, item="municipalities", value=table["n"].astype(float),
                                label=table["municipality"]),
                   domain=ANY, wave=ANY, partition="municipalities", priority=PRIORITY["table"])
    totals = tables["municipalities"].groupby("cohort")["n"].sum().reset_index()
    totals = _cells(totals.assign(report=report, item="municipalities:total", value=totals["n"].astype(float)),
                    domain=ANY, wave=ANY, institutions=ALL, priority=PRIORITY["total"])
    return pd.concat([cells, totals], ignore_index=True)


def flow_cells(tables: dict, report: str) -> pd.DataFrame:
    """The participant flow per wave and cohort, and per domain into the model."""
    flow = tables["flow"]
    waves = flow[flow["wave"] != "pre+post"]
    counts = ["received", "duplicates", "participants", "unmatched", "careless", "excluded", "analysed"]
    by_wave = _melt(waves[["wave", "cohort", *counts]].assign(n=waves["participants"]), report, "flow", counts,
                    domain=ANY, institutions=ALL, priority=PRIORITY["total"])
    model = flow[flow["wave"] == "pre+post"]
    counts = ["participants", "insufficient_items", "excluded", "analysed"]
    by_domain = _melt(model[["domain", "cohort", *counts]].assign(n=model["participants"], wave=ANY), report,
                      "flow_model", counts, institutions=ALL, priority=PRIORITY["total"])
    return pd.concat([by_wave, by_domain], ignore_index=True)


def descriptive_cells(tables: dict, report: str) -> pd.DataFrame:
    """Mean, SD and n per domain, cohort and wave (the table and the means figure)."""
    table = tables["descriptives"][["domain", "cohort", "wave", "n", "mean", "sd"]]
    return _melt(table, report, "descriptives", ["mean", "sd"], institutions=ALL, priority=PRIORITY["table"])


def reliability_cells(tables: dict, report: str) -> pd.DataFrame:
    """Alpha with its interval, omega and the item-total correlations per domain and wave (n:
    the respondents who answered every item)."""
    table = tables["reliability"]
    table = table[table["term"].isin(["alpha", "omega_total"]) | table["term"].str.startswith("item_total_r:")]
    long = table.melt(id_vars=["domain", "wave", "n", "term"], value_vars=["estimate", "conf_low", "conf_high"],
                      var_name="statistic", value_name="value").dropna(subset=["value"])
    long = long.assign(report=report, item="reliability:" + long["term"] + ":" + long["statistic"])
    return _cells(long, institutions=ALL, priority=PRIORITY["table"])


def needs_cells(tables: dict, report: str) -> pd.DataFrame:
    """The needs table (mean and rank per stakeholder group and area), its tests, the preferred
    formats and the distribution figure."""
    needs = tables["needs"].assign(domain=lambda t: t["area"].map(need_domain), role=lambda t: t["stakeholder"])
    parts = [_melt(needs[["domain", "role", "n", "estimate", "rank"]], report, "needs", ["estimate", "rank"],
                   wave=NEEDS_WAVE, institutions=ALL, priority=PRIORITY["table"])]
    sizes = tables["needs"].groupby("area")["n"].sum()
    tests = tables["needs_tests"].assign(domain=lambda t: t["area"].map(need_domain),
                                         n=lambda t: t["area"].map(sizes))
    parts.append(_melt(tests[["domain", "n", "p_holm", "epsilon_squared"]], report, "needs_tests",
                       ["p_holm", "epsilon_squared"], wave=NEEDS_WAVE, institutions=ALL, priority=PRIORITY["table"]))
    formats = tables["needs_formats"]
    formats = formats.assign(domain=need_domain(ANY), role=formats["stakeholder"], count=formats["count"].astype(float))
    parts.append(pd.concat([_melt(part[["domain", "role", "n", "count", "share"]], report,
                                  f"needs_formats:{code}", ["count", "share"], wave=NEEDS_WAVE, institutions=ALL,
                                  priority=PRIORITY["table"]) for code, part in formats.groupby("format")]))
    distribution = tables["needs_distribution"].merge(
        tables["needs"][["stakeholder", "area", "n"]], on=["stakeholder", "area"])
    distribution = distribution.assign(domain=distribution["area"].map(need_domain), role=distribution["stakeholder"],
                                       item="figure_likert:" + distribution["value"].astype(str),
                                       value=distribution["share"], report=report)
    parts.append(_cells(distribution, wave=NEEDS_WAVE, institutions=ALL, priority=PRIORITY["table"]))
    return pd.concat(parts, ignore_index=True)


def model_cells(tables: dict, report: str) -> pd.DataFrame:
    """The model-based numbers (difference-in-differences, effect sizes, checks, variance
    components, sensitivity analyses, response shift), each over a domain's whole sample or a
    cohort of it (wave "any"): regression estimates, not means of a subgroup."""
    did = tables["did"]
    n_of = did.set_index("domain")["n_participants"]
    stats = ["estimate", "std_error", "df", "p_value", "p_holm", "conf_low", "conf_high", "d_ppc2",
             "d_conf_low", "d_conf_high", "n_institutions"]
    parts = [_melt(did[["domain", "n_participants", *stats]].rename(columns={"n_participants": "n"}), report, "did",
                   stats, wave=ANY, institutions=ALL, priority=PRIORITY["total"])]
    effects = tables["effect_sizes"]
    effects = effects.assign(cohort=effects["cohort"].where(effects["cohort"].isin(COHORTS), ALL),
                             item_name="effect_sizes:" + effects["measure"])
    for name, part in effects.groupby("item_name"):
        parts.append(_melt(part[["domain", "cohort", "n", "estimate", "conf_low", "conf_high"]], report, name,
                           ["estimate", "conf_low", "conf_high"], wave=ANY, institutions=ALL,
                           priority=PRIORITY["total"]))
    checks = tables["model_checks"]
    check_stats = ["icc_institution", "icc_participant", "r2_marginal", "r2_conditional"]
    parts.append(_melt(checks[["domain", "n_participants", *check_stats]].rename(columns={"n_participants": "n"}),
                       report, "model_checks", check_stats, wave=ANY, institutions=ALL, priority=PRIORITY["total"]))
    variance = tables["variance_components"].assign(n=lambda t: t["domain"].map(n_of))
    variance = variance.dropna(subset=["n"]).assign(item_name="variance:" + variance["component"])
    for name, part in variance.groupby("item_name"):
        parts.append(_melt(part[["domain", "n", "variance"]], report, name, ["variance"], wave=ANY,
                           institutions=ALL, priority=PRIORITY["total"]))
    sens = tables["sensitivity"].dropna(subset=["estimate"])
    sens = sens.assign(domain=sens["domain"].fillna(ANY), item_name="sensitivity:" + sens["analysis"],
                       n=sens["n_participants"])
    for name, part in sens.groupby("item_name"):
        parts.append(_melt(part[["domain", "n", "estimate", "conf_low", "conf_high", "p_value"]], report, name,
                           ["estimate", "conf_low", "conf_high", "p_value"], wave=ANY, institutions=ALL,
                           priority=PRIORITY["total"]))
    shift = tables["response_shift"]
    shift = shift.assign(cohort=shift["cohort"].where(shift["cohort"].isin(COHORTS), ALL))
    parts.append(_melt(shift[["domain", "cohort", "n", "estimate", "conf_low", "conf_high", "p_value"]], report,
                       "response_shift", ["estimate", "conf_low", "conf_high", "p_value"], wave=ANY,
                       institutions=ALL, priority=PRIORITY["total"]))
    cells = pd.concat(parts, ignore_index=True)
    return cells[cells["n"].notna()].assign(n=lambda c: c["n"].astype(int))


def evaluation_cells(tables: dict, scores: pd.DataFrame, registry: pd.DataFrame, langs: list[str]) -> pd.DataFrame:
    """Every cell of the evaluation report in each language (the same numbers in both)."""
    parts = []
    for lang in langs:
        report = evaluation_report(lang)
        parts += [flow_cells(tables, report), sample_cells(tables, scores, registry, report),
                  municipality_cells(tables, scores, registry, report), reliability_cells(tables, report),
                  needs_cells(tables, report), descriptive_cells(tables, report), model_cells(tables, report)]
    if not parts:
        return _cells(pd.DataFrame(columns=["report", "item", "domain", "wave", "institutions", "n", "value",
                                            "priority"]))
    cells = pd.concat(parts, ignore_index=True)
    cells["n"] = cells["n"].astype(int)
    return cells


# --------------------------------------------------------------------------- the whole release


def printed_value(values: pd.Series, digits: int = 2) -> pd.Series:
    """Values as a report prints them (``rounded``): differences of
    printed numbers are computed from these, so that the page adds up."""
    return values.map(lambda v: rounded(v, digits))


def derived_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """Numbers a school report computes from two shown cells, so they reveal nothing the two do
    not: at the team level the team's difference from the region (per domain and wave), and at
    any level the change from entry to exit of the shown level and of the region (per domain,
    on the exit cell's group). Built after the control, from shown cells only."""
    shown = cells[(cells["status"] == "shown") & cells["report"].str.startswith("institutions/")]
    scores = shown[shown["item"] == "scores"]
    region = shown[shown["item"] == "scores_region"][["report", "domain", "wave", "value"]]
    team = scores[scores["level"] == "team"].merge(region.rename(columns={"value": "region"}),
                                                   on=["report", "domain", "wave"])
    difference = team.assign(item="scores_difference",
                             value=printed_value(team["value"]) - printed_value(team["region"]))
    parts = [difference.drop(columns="region")]
    for item, frame in (("scores_change", scores), ("scores_region_change", shown[shown["item"] == "scores_region"])):
        pre = frame[frame["wave"] == "pre"][["report", "domain", "value"]].rename(columns={"value": "pre"})
        post = frame[frame["wave"] == "post"].merge(pre, on=["report", "domain"])
        parts.append(post.assign(item=item, value=printed_value(post["value"]) - printed_value(post["pre"]))
                     .drop(columns="pre"))
    return pd.concat(parts, ignore_index=True)[cells.columns]



def control_release(scores: pd.DataFrame, needs: pd.DataFrame, registry: pd.DataFrame, tables: dict,
                    domains: list[str], langs: list[str], min_cell: int,
                    open_summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every cell of every report with its status after disclosure control (dpo_eval.release.manifest),
    the values of suppressed cells removed, and each school report's ``level``."""
    atoms = pd.concat([atoms_from_scores(scores), needs_atoms(needs, registry)], ignore_index=True)
    evaluation = evaluation_cells(tables, scores, registry, langs)
    # The open data package's summary (OPEN_DATA.md): over all its participants.
    opened = _cells(open_summary, priority=PRIORITY["total"]) if open_summary is not None else evaluation.iloc[:0]
    levels: dict[str, pd.Series] = {}

    def build(suppressed: dict[str, str]) -> pd.DataFrame:
        cells, levels["current"] = school_cells(scores, needs, registry, domains, min_cell, suppressed)
        levels.setdefault("unprotected", levels["current"])
        return pd.concat([part for part in (evaluation, opened, cells) if len(part)], ignore_index=True)

    cells, _ = control(build, atoms, min_cell)
    level_of = {school_report(i): level for i, level in levels["current"].items()}
    cells["level"] = cells["report"].map(level_of).fillna("")
    # A school shown a less specific level than its own counts allow: a more specific group
    # was hidden because other reports would let it be worked out.
    moved = levels["current"] != levels["unprotected"]
    protected = {school_report(i) for i in levels["current"].index[moved]}
    cells["level_reason"] = np.where(cells["report"].isin(protected), "protected", "")
    cells.loc[cells["status"] != "shown", "value"] = np.nan
    cells = pd.concat([cells, derived_cells(cells)], ignore_index=True)
    # Sorted by report first: a batch of school reports reads its stretch of the file alone
    # (view.read_control).
    order = ["report", "item", "domain", "wave", "institutions", "cohort", "role"]
    return cells.sort_values(order, kind="stable").reset_index(drop=True)
