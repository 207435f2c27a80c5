"""Sentence rules: every sentence of the reports worded from a finding
(``dpo_eval.reporting.findings``) in the reader's language (``reports/i18n/{lang}.yaml``).

A rule chooses a string by the finding's ``status`` and fills it with the finding's numbers:

- a result is stated only for a usable finding (``positive``, ``negative``, ``null``); a
  finding that is ``not_estimable`` or ``not_converged`` gets a sentence saying so and no
  result ("no association was found" is never said of an analysis that was not estimated);
- "shown" / "persists" / "association" only for a finding significant after Holm within its
  family, with the Holm-consistent interval beside it;
- exploratory findings carry the word "exploratory" and never drive a recommendation on their
  own: they lead to a recommendation to test them as a pre-specified hypothesis;
- the verdict and the conclusions name every domain's decision, "not demonstrated" for a
  domain without a significant gain.
"""

from __future__ import annotations

import pandas as pd

from dpo_eval.reporting.findings import (NEGATIVE, NOT_CONVERGED, NOT_ESTIMABLE, NULL, POSITIVE, SENSITIVITY_ANALYSES,
                                         EvaluationFindings, SecondaryFinding)
from dpo_eval.reporting.findings import verdict as findings_verdict
from dpo_eval.reporting.formatting import format_ci, format_optional, format_p, join_words, points, quote
from dpo_eval.core.study import WAVES
from dpo_eval.reporting.typography import counted, format_number


def cleaning_notes(flow: pd.DataFrame, strings: dict, lang: str, table: int,
                   marks: dict[str, str] | None = None) -> list[str]:
    """What cleaning changed, from the flow counts of the waves (flow.csv): the values set to
    missing per wave, and the participants excluded for want of a cohort (cohort "unknown",
    cleaning.without_cohort: exclude; ``marks``: per wave, the mark printed instead of a count
    the disclosure control hid); no sentence where nothing was changed."""
    marks = marks or {}
    words, notes = strings["cleaning_notes"], []
    order = [w for w in WAVES if w in set(flow["wave"])]
    missing = flow.groupby("wave")["set_missing"].sum() if "set_missing" in flow else pd.Series(dtype=int)
    listed = [words["wave_count"].format(wave=strings["waves"][w], count=counted(
        int(missing[w]), strings["nouns"]["value"], lang)) for w in order if missing.get(w, 0) > 0]
    if listed:
        notes.append(words["set_missing"].format(waves="; ".join(listed)))
    unknown = flow[flow["cohort"] == "unknown"].set_index("wave")["excluded"]
    listed = [words["wave_participants"].format(wave=strings["waves"][w], count=marks.get(w) or counted(
        int(unknown[w]), strings["nouns"]["participant"], lang)) for w in order if unknown.get(w, 0) > 0]
    if listed:
        notes.append(words["without_cohort"].format(waves="; ".join(listed), unknown=strings["unknown"],
                                                    table=table))
    return notes


def domain_list(domains, names: dict, strings: dict, lang: str) -> str:
    return join_words([quote(names["domain"][d], lang) for d in domains], strings)


def verdict(domains: tuple, strings: dict, names: dict, lang: str) -> tuple[str, list[str]]:
    """The verdict on the hypothesis and one sentence per domain, from the primary findings
    (``findings.domain_findings``): supported (every domain positive), partial (some) or not
    demonstrated; a domain that is not significant is "not demonstrated", never "rejected";
    the wording is descriptive, not causal."""
    text = strings[f"verdict_{findings_verdict(domains)}"]
    for f in domains:
        if f.status == NEGATIVE:
            text += " " + strings["verdict_opposite"].format(domain=names["domain"][f.domain])
    lines = []
    for f in domains:
        values = {"domain": names["domain"][f.domain], "low": format_number(f.conf_low, lang),
                  "high": format_number(f.conf_high, lang), "p": format_p(f.p_holm, lang)}
        key = {POSITIVE: "domain_supported", NEGATIVE: "domain_opposite", NULL: "domain_not_significant",
               NOT_CONVERGED: "domain_not_converged"}[f.status]
        estimate = -f.estimate if f.status == NEGATIVE else f.estimate
        lines.append(strings[key].format(estimate=points(estimate, strings, lang), **values))
    not_converged = [f.domain for f in domains if f.status == NOT_CONVERGED]
    if not_converged:
        text += " " + strings["verdict_not_converged"].format(domains=domain_list(not_converged, names, strings, lang))
    return text + " " + strings["verdict_design"], lines


def not_stated(findings, strings: dict, names: dict, lang: str) -> list[str]:
    """One sentence per analysis and reason for the findings without a result."""
    t = strings["interpretation"]
    out = []
    for reason in (NOT_ESTIMABLE, NOT_CONVERGED):
        by_analysis: dict[str, list[str]] = {}
        for f in findings:
            if f.status == reason:
                by_analysis.setdefault(f.analysis, []).append(f.domain)
        for analysis, domains in by_analysis.items():
            label = strings["analyses"][analysis]
            where = ("" if domains == ["all"] else
                     t["for_domains"].format(domains=domain_list(domains, names, strings, lang)))
            out.append(t[reason].format(analysis=label, where=where))
    return out


def secondary_values(f: SecondaryFinding, strings: dict, names: dict, lang: str) -> dict:
    return {"domain": names["domain"].get(f.domain, f.domain), "estimate": points(f.estimate, strings, lang),
            "ci": format_ci(f.conf_low, f.conf_high, lang), "p": format_p(f.p_holm, lang), "m": f.family_size}


def respondents(f: SecondaryFinding, strings: dict, lang: str) -> str:
    """"51 in the program cohort and 53 in the comparison cohort"."""
    return join_words([strings["interpretation"]["respondents_in"].format(
        n=counted(n, strings["nouns"]["respondent"], lang), cohort=strings["cohorts_genitive"][c])
        for c, n in f.n_by_cohort], strings)


def gain_sentences(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> list[str]:
    t = strings["interpretation"]
    out = []
    for f in findings.domains:
        key = {POSITIVE: "gain_shown", NEGATIVE: "gain_opposite", NULL: "gain_not_shown",
               NOT_CONVERGED: "gain_not_converged"}[f.status]
        out.append(t[key].format(domain=names["domain"][f.domain], estimate=points(abs(f.estimate), strings, lang),
                                 d=format_number(f.d, lang), size=strings["effect_size_words"][f.magnitude]))
    return out


def followup_sentences(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> list[str]:
    """Exploratory: the pre-to-follow-up DiD, Holm across the domains, with the number of
    respondents per cohort at follow-up."""
    t = strings["interpretation"]
    primary = {f.domain: f.status for f in findings.domains}
    out = []
    for f in findings.followup:
        if not f.usable:
            continue
        key = {POSITIVE: "followup_persists", NEGATIVE: "followup_reversed", NULL: "followup_not_shown"}[f.status]
        if f.status == POSITIVE and primary.get(f.domain) != POSITIVE:
            key = "followup_larger"  # nothing shown at exit can "persist"
        out.append(t[key].format(**secondary_values(f, strings, names, lang), n=respondents(f, strings, lang)))
    return out + not_stated(findings.followup, strings, names, lang)


def moderation_sentences(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> list[str]:
    """Exploratory: the moderation by the school's communication quality, Holm across the
    domains; the moderator is a school-level rating, so the wording is about schools."""
    t = strings["interpretation"]
    usable = [f for f in findings.moderation if f.usable]
    out = [t["moderation_larger" if f.status == POSITIVE else "moderation_smaller"].format(
        **secondary_values(f, strings, names, lang)) for f in usable if f.status in (POSITIVE, NEGATIVE)]
    if usable and not out:
        out.append(t["moderation_none"].format(domains=domain_list([f.domain for f in usable], names, strings, lang),
                                               m=len(usable)))
    return out + not_stated(findings.moderation, strings, names, lang)


def shift_sentences(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> list[str]:
    t = strings["interpretation"]
    usable = [f for f in findings.shift if f.usable]
    out = [t["shift_lower" if f.estimate < 0 else "shift_higher"].format(**secondary_values(f, strings, names, lang))
           for f in usable if f.status in (POSITIVE, NEGATIVE)]
    if usable and not out:
        out.append(t["shift_none"])
    return out + not_stated(findings.shift, strings, names, lang)


def sensitivity_sentences(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> list[str]:
    """Agreement of each robustness check with the primary result, both judged after Holm
    within their family; only estimated, converged analyses count as agreeing."""
    t = strings["interpretation"]
    checks = [f for a in SENSITIVITY_ANALYSES for f in findings.sensitivity[a]]
    usable = [f for f in checks if f.usable and f.agrees_with_primary is not None]
    agreeing = [a for a in SENSITIVITY_ANALYSES
                if any(f.analysis == a for f in usable)
                and all(f.agrees_with_primary for f in usable if f.analysis == a)]
    disagreeing = [f"{names['domain'][f.domain]}: {strings['analyses'][f.analysis].lower()}"
                   for f in usable if not f.agrees_with_primary]
    out = []
    if agreeing:
        out.append(t["sensitivity_agree"].format(
            analyses=join_words([quote(strings["analyses"][a].lower(), lang) for a in agreeing], strings)))
    if disagreeing:
        out.append(t["sensitivity_disagree"].format(analyses="; ".join(disagreeing)))
    if not usable:
        out.append(t["sensitivity_none"])
    return out + not_stated(checks, strings, names, lang)


def needs_sentences(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> list[str]:
    t = strings["interpretation"]
    out = [t["needs_top"].format(group=strings["stakeholder_plural"][group],
                                 areas=join_words([quote(names["area"][a], lang) for a in areas], strings))
           for group, areas in findings.needs.top_areas]
    differing = [names["area"][a] for a in findings.needs.differing_areas]
    out.append(t["needs_differ"].format(areas=", ".join(differing)) if differing else t["needs_agree"])
    return out


def exploratory_results(findings: EvaluationFindings, strings: dict, names: dict) -> list[str]:
    """The exploratory findings significant after Holm (moderation, response shift), one item
    per analysis naming its domains."""
    out = []
    for group in (findings.moderation, findings.shift):
        domains = [names["domain"][f.domain] for f in group if f.status in (POSITIVE, NEGATIVE)]
        if domains:
            out.append(f"{strings['exploratory_labels'][group[0].analysis]}: {', '.join(domains)}")
    return out


def conclusions(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> list[str]:
    t = strings["interpretation"]
    gains = findings.gains
    null = [f.domain for f in findings.domains if f.status == NULL]
    out = []
    if gains:
        out.append(t["conclusion_gain"].format(domains=domain_list(gains, names, strings, lang)))
    if null:
        out.append(t["conclusion_not_demonstrated"].format(domains=domain_list(null, names, strings, lang)))
    for f in findings.domains:
        if f.status in (NEGATIVE, NOT_CONVERGED):
            out.append(t[f"conclusion_{f.status}"].format(domain=quote(names["domain"][f.domain], lang)))
    out.append(t["conclusion_design"])
    shown = set(gains)
    persisting = [f.domain for f in findings.followup if f.status == POSITIVE and f.domain in shown]
    fading = [f.domain for f in findings.followup if f.status in (NULL, NEGATIVE) and f.domain in shown]
    if persisting:
        out.append(t["conclusion_followup_persists"].format(domains=domain_list(persisting, names, strings, lang)))
    if fading:
        out.append(t["conclusion_followup"].format(domains=domain_list(fading, names, strings, lang)))
    return out


def recommendations(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> list[str]:
    """Recommendations from the confirmatory findings and the needs; an exploratory result
    only leads to testing it as a pre-specified hypothesis."""
    t = strings["interpretation"]
    out = []
    school = dict(findings.needs.top_areas).get("school", ())
    if school:
        out.append(t["recommend_needs"].format(areas=join_words([names["area"][a] for a in school], strings)))
    if any(f.status != POSITIVE for f in findings.followup):
        out.append(t["recommend_followup"])
    exploratory = exploratory_results(findings, strings, names)
    if exploratory:
        out.append(t["recommend_confirm"].format(results="; ".join(exploratory)))
    out.append(t["recommend_design"])
    return out


def interpretation(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> dict[str, list[str]]:
    """Hedged, rule-based sentences on every finding, then conclusions and recommendations."""
    return {"gain": gain_sentences(findings, strings, names, lang),
            "followup": followup_sentences(findings, strings, names, lang),
            "moderation": moderation_sentences(findings, strings, names, lang),
            "shift": shift_sentences(findings, strings, names, lang),
            "sensitivity": sensitivity_sentences(findings, strings, names, lang),
            "needs": needs_sentences(findings, strings, names, lang),
            "conclusions": conclusions(findings, strings, names, lang),
            "recommendations": recommendations(findings, strings, names, lang)}


def invariance_sentences(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> list[str]:
    """One sentence per domain from its InvarianceFinding: the level of measurement invariance
    between entry and exit and what it allows for comparing means across the waves (the freed
    items named), or why it was not assessed; then the levels of the cohorts fitted on their own."""
    t = strings["invariance"]
    out = []
    for f in findings.invariance:
        key = f.level if f.assessed else f.reason
        text = t[key].format(domain=names["domain"][f.domain],
                             n=counted(f.n, strings["nouns"]["participant"], lang),
                             items=join_words([quote(names["item"][i], lang) for i in f.freed_items], strings),
                             cfi=format_optional(f.cfi, lang, 3), rmsea=format_optional(f.rmsea, lang, 3))
        if f.cohorts:
            text += " " + t["cohorts"].format(levels="; ".join(
                f"{t['groups'][cohort]} — {t['levels'][level]}" for cohort, level in f.cohorts))
        out.append(text)
    return out


def combined_sentence(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> str:
    f = findings.combined
    if not f.usable:
        return " ".join(not_stated([f], strings, names, lang))
    return strings["combined_text"].format(estimate=format_number(f.estimate, lang),
                                           ci=format_ci(f.conf_low, f.conf_high, lang), p=format_p(f.p_value, lang))


def checks_sentences(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> list[str]:
    """Convergence, singularity and identifiability of the primary and the secondary fits."""
    c = findings.checks
    listed = lambda domains: ", ".join(names["domain"][d] for d in domains)  # noqa: E731
    # An analysis of one competency group names it; the combined model (all groups) needs no name.
    pairs = lambda items: "; ".join(strings["analyses"][a].lower()  # noqa: E731
                                    + (f" ({names['domain'][d]})" if d in names["domain"] else "")
                                    for a, d in items)
    out = [strings["nonconverged_text"].format(domains=listed(c.primary_not_converged)) if c.primary_not_converged
           else strings["all_converged"],
           strings["singular_text"].format(domains=listed(c.primary_singular)) if c.primary_singular
           else strings["none_singular"]]
    if c.primary_not_identifiable:
        out.append(strings["nonidentifiable_text"].format(domains=listed(c.primary_not_identifiable)))
    out.append(strings["secondary_nonconverged_text"].format(analyses=pairs(c.secondary_not_converged))
               if c.secondary_not_converged else strings["secondary_all_converged"])
    if c.secondary_singular:
        out.append(strings["secondary_singular_text"].format(analyses=pairs(c.secondary_singular)))
    return out


def school_summary(domains: tuple, strings: dict, names: dict, lang: str) -> list[str]:
    """The evaluation's result for a school's report, from the same primary findings
    (``findings.domain_findings``) as the evaluation report's verdict."""
    ti = strings["institution"]
    shown = [names["domain"][f.domain].lower() for f in domains if f.status == POSITIVE]
    if findings_verdict(domains) == "supported":
        first = ti["finding_all"]
    elif shown:
        first = ti["finding_some"].format(domains=", ".join(shown))
    else:
        first = ti["finding_none"]
    return [first, ti["finding_design"]]


def school_page(participation: list[dict], scores: list[dict], level: str, levels: dict, cohort: str | None,
                domains: tuple, config: dict, strings: dict, names: dict, lang: str,
                protected: bool = False) -> list[str]:
    """Page 1 of a school's report: what this school can take from the evaluation.

    - its own participation against the mean per school of the region (its own counts, which
      the school knows anyway);
    - the change of the shown level's mean scores from entry to exit beside the region's,
      computed from the printed (rounded) means, where disclosure control shows them;
    - what is known (the evaluation's result for the cohorts, from the primary findings) and
      what is not (no effect is estimated for a single school; self-ratings);
    - a next step with the contact of the configuration.
    """
    ti = strings["institution"]
    page = ti["page"]
    out = []
    if any(p["n"] for p in participation):
        out.append(page["participation"].format(
            counts="; ".join(f"{p['wave']} — {p['n']}" if lang == "ru" else f"{p['wave']}: {p['n']}"
                             for p in participation),
            region="; ".join(format_number(p["region_mean"], lang, 1) for p in participation)))
    else:
        out.append(ti["no_participants"])
    changes = []
    for domain, name in names["domain"].items():
        cells = {r["wave_key"]: r for r in scores if r["domain_key"] == domain}
        pre, post = cells.get("pre"), cells.get("post")
        if not pre or not post or any(cell[key] is None for cell in (pre, post) for key in ("mean", "region_mean")):
            continue  # a change needs both waves' means, the team's and the region's (one may be hidden)
        changes.append(page["change"].format(domain=quote(name, lang), change=signed(post["mean"] - pre["mean"], lang),
                                             region=signed(post["region_mean"] - pre["region_mean"], lang)))
    if changes:
        key = "changes_team" if level == "team" else "changes_pooled"
        out.append(page[key].format(level=levels[level], changes="; ".join(changes)))
    elif level == "none" or not changes:
        # ``protected``: the disclosure control hid the groups around the team to protect others.
        out.append(page["no_scores_protected" if protected else "no_scores"])
    out.append(school_summary(domains, strings, names, lang)[0])
    out.append(page["unknown"])
    contact = (config.get("reports") or {}).get("contact") or {}
    if contact.get("email"):
        phone = contact.get("phone")
        out.append(page["next_step"].format(contact=contact["email"] + (f", {phone}" if phone else "")))
    else:
        out.append(page["next_step_no_contact"])
    return out


def signed(value: float, lang: str) -> str:
    """A change with its sign: "+0,50", "−0,10", "0,00"."""
    text = format_number(value, lang)
    return text if text.startswith("\u2212") or float(f"{value:.2f}") == 0 else "+" + text
