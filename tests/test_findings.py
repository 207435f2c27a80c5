"""Findings and sentence rules, table-driven and without rendering: a null study, an
all-significant one, a mixed one, analyses that could not be estimated, fits that did not
converge, singular fits. Each case states the decision the rules must reach; breaking one rule
in dpo_eval.analysis.multiplicity, reporting.findings or reporting.sentences (Holm replaced by the
unadjusted p, the estimability or convergence check removed, the agreement judged on another
footing) makes at least one case fail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import REPO
from dpo_eval.analysis import multiplicity
from dpo_eval.reporting import design, findings, sentences
from dpo_eval.reporting.formatting import load_strings

DOMAINS = ["universal", "professional", "subject_methodical"]
NAMES = {"domain": {"universal": "U", "professional": "P", "subject_methodical": "S"},
         "area": {"a1": "A1", "a2": "A2", "a3": "A3"}}
STRINGS = {lang: load_strings(REPO / "reports" / "i18n", lang) for lang in ("ru", "en")}
SE, DF = 0.1, 200.0


def quoted(name: str, lang: str) -> str:
    return f"«{name}»" if lang == "ru" else f"\u201c{name}\u201d"


def present(key: str, text: dict, t: dict) -> bool:
    """Whether a sentence made from the string ``key`` is among ``text``'s sentences (found by
    the longest literal piece of the string)."""
    template = t["interpretation"].get(key, t.get(key))
    stem = max(template.replace("}", "{").split("{")[::2], key=len)  # the longest literal piece
    return any(stem in s for group in text.values() for s in group)


def p_of(estimate: float, se: float = SE, df: float = DF) -> float:
    return float(2 * stats.t.sf(abs(estimate / se), df))


def estimate_for(p: float, se: float = SE, df: float = DF) -> float:
    """The estimate whose two-sided t-test has p-value ``p``."""
    return float(stats.t.isf(p / 2, df) * se)


def did_rows(p_values, signs=(1, 1, 1)) -> pd.DataFrame:
    rows = []
    for domain, p, sign in zip(DOMAINS, p_values, signs):
        estimate = sign * estimate_for(p)
        q = stats.t.ppf(0.975, DF) * SE
        rows.append({"domain": domain, "estimate": estimate, "std_error": SE, "df": DF, "statistic": estimate / SE,
                     "p_value": p, "conf_low": estimate - q, "conf_high": estimate + q, "d_ppc2": estimate / 0.6,
                     "d_conf_low": 0.0, "d_conf_high": 1.0, "n_participants": 200, "n_institutions": 40})
    table = pd.DataFrame(rows)
    table["p_holm"] = multiplicity.holm(table["p_value"])
    return table


def secondary_rows(analysis: str, p_values=None, estimable=(True, True, True), converged=(True, True, True),
                   singular=(False, False, False), signs=(1, 1, 1)) -> list[dict]:
    rows = []
    for i, domain in enumerate(DOMAINS):
        row = {"analysis": analysis, "domain": domain, "term": "post:program", "estimable": estimable[i],
               "converged": converged[i] if estimable[i] else None, "singular": singular[i] if estimable[i] else None,
               "note": "" if estimable[i] else "not estimable: too few schools"}
        if estimable[i]:
            estimate = signs[i] * estimate_for(p_values[i])
            q = stats.t.ppf(0.975, DF) * SE
            row.update(estimate=estimate, std_error=SE, df=DF, p_value=p_values[i], conf_low=estimate - q,
                       conf_high=estimate + q)
        else:
            row.update(estimate=np.nan, std_error=np.nan, df=np.nan, p_value=np.nan, conf_low=np.nan, conf_high=np.nan)
        rows.append(row)
    return rows


# Decisions of invariance.csv (configural, metric, scalar, partial scalar) that reach each level.
INVARIANCE_DECISIONS = {"scalar": ("holds", "holds", "holds", None),
                        "partial_scalar": ("holds", "holds", "rejected", "holds"),
                        "metric": ("holds", "holds", "rejected", "rejected"),
                        "configural": ("holds", "rejected", "not_tested", None),
                        "none": ("rejected", "holds", "holds", None)}


def invariance_table(levels=("scalar",) * 3, cohorts: dict | None = None) -> pd.DataFrame:
    """invariance.csv of a synthetic study: all participants of each domain at ``levels`` (a
    level, or "too_few"), and per cohort {cohort: level}; the partial model frees uk3."""
    rows = []
    for domain, level in zip(DOMAINS, levels):
        for group, group_level in {"all": level, **(cohorts or {})}.items():
            n = 60 if group_level == "too_few" else 200
            decisions = INVARIANCE_DECISIONS.get(group_level, ("not_tested",) * 3 + (None,))
            for model, decision in zip(("configural", "metric", "scalar", "partial_scalar"), decisions):
                if decision is None:
                    continue
                ok = group_level != "too_few"
                rows.append({"domain": domain, "group": group, "model": model, "n": n,
                             "status": "ok" if ok else "too_few", "cfi": 0.85 if ok else np.nan,
                             "rmsea": 0.09 if ok else np.nan, "decision": decision,
                             "freed_items": "uk3" if model == "partial_scalar" else "",
                             "note": "" if ok else "60 participants with every item at both waves"})
    return pd.DataFrame(rows)


def study(primary=(0.001, 0.001, 0.001), primary_signs=(1, 1, 1), primary_converged=(True, True, True),
          primary_singular=(False, False, False), sensitivity=None, followup=(0.01, 0.3, 0.5),
          moderation=dict(p_values=(0.3, 0.5, 0.7)), combined=0.001, shift=(0.3, 0.4, 0.6),
          invariance=("scalar",) * 3, invariance_cohorts=None) -> dict:
    """The tables of a synthetic study (the columns the findings read)."""
    did = did_rows(primary, primary_signs)
    checks = pd.DataFrame({"domain": DOMAINS, "converged": primary_converged, "singular": primary_singular,
                           "variance_components_identifiable": True})
    sens_rows = []
    for analysis in findings.SENSITIVITY_ANALYSES:
        spec = (sensitivity or {}).get(analysis, {"p_values": primary, "signs": primary_signs})
        sens_rows += secondary_rows(analysis, **spec)
    sens_rows += secondary_rows("followup", p_values=followup) if followup is not None else \
        secondary_rows("followup", estimable=(False, False, False))
    sens_rows += secondary_rows("moderation_communication", **moderation)
    combined_row = secondary_rows("combined", p_values=(combined,) * 3)[0] if combined is not None else \
        secondary_rows("combined", estimable=(False,) * 3)[0]
    sens_rows.append({**combined_row, "domain": "all"})
    sens = pd.concat([did.assign(analysis="primary", estimable=True, converged=True, singular=False),
                      multiplicity_free(pd.DataFrame(sens_rows))], ignore_index=True)
    shift_table = pd.DataFrame([{"domain": d, "cohort": "program", "estimate": -estimate_for(p), "std_error": SE,
                                 "conf_low": np.nan, "conf_high": np.nan, "p_value": p, "n": 101}
                                for d, p in zip(DOMAINS, shift)])
    descriptives = pd.DataFrame([{"domain": d, "cohort": c, "wave": "followup", "mean": 3.5, "sd": 0.6, "n": n}
                                 for d in DOMAINS for c, n in (("program", 51), ("comparison", 53))])
    sample = pd.DataFrame([{"cohort": c, "characteristic": k, "level": "", "n": n}
                           for c in ("program", "comparison")
                           for k, n in (("institutions", 30), ("participants", 120))])
    flow = pd.DataFrame([{"wave": w, "cohort": c, "analysed": n} for c in ("program", "comparison")
                         for w, n in (("pre", 110), ("post", 100), ("followup", 52))])
    needs = pd.DataFrame([{"stakeholder": g, "area": a, "rank": r} for g in ("school", "iro")
                          for a, r in (("a1", 1), ("a2", 2), ("a3", 3))])
    needs_tests = pd.DataFrame({"area": ["a1", "a2", "a3"], "p_holm": [0.01, 0.5, np.nan]})
    return {"did": did, "model_checks": checks, "sensitivity": sens, "response_shift": shift_table,
            "descriptives": descriptives, "sample": sample, "flow": flow, "needs": needs, "needs_tests": needs_tests,
            "invariance": invariance_table(invariance, invariance_cohorts)}


def multiplicity_free(rows: pd.DataFrame) -> pd.DataFrame:
    """Secondary rows as the pipeline writes them: p_holm within each analysis."""
    from dpo_eval.analysis.sensitivity import family_adjusted

    return family_adjusted(rows)


CONFIG = {"analysis": {"domains": DOMAINS},
          "study": {"program": {"ru": "Программа", "en": "Program"},
                    "hypothesis": {"ru": "Гипотеза Х.", "en": "Hypothesis H."},
                    "wave_dates": {"pre": "2025-09-15", "post": "2025-12-15", "followup": "2026-03-16"}},
          "reports": {"contact": {"email": "team@example.org"}}}


def evaluate(**spec):
    return findings.evaluation_findings(study(**spec), CONFIG)


def all_sentences(f, lang: str) -> dict[str, list[str]]:
    t = STRINGS[lang]
    text, lines = sentences.verdict(f.domains, t, NAMES, lang)
    return {**sentences.interpretation(f, t, NAMES, lang), "verdict": [text], "domain_lines": lines,
            "combined": [sentences.combined_sentence(f, t, NAMES, lang)],
            "checks": sentences.checks_sentences(f, t, NAMES, lang),
            "school": sentences.school_summary(f.domains, t, NAMES, lang)}


# --------------------------------------------------------------------------- the cases

# name -> (study spec, expected primary statuses, expected verdict)
PRIMARY_CASES = {
    "null": (dict(primary=(0.4, 0.6, 0.9)), ("null", "null", "null"), "not_demonstrated"),
    "all significant": (dict(primary=(0.001, 0.002, 0.004)), ("positive",) * 3, "supported"),
    "mixed": (dict(primary=(0.001, 0.2, 0.6)), ("positive", "null", "null"), "partial"),
    # Unadjusted all below 0.05, Holm-adjusted all 0.09: nothing is shown.
    "significant only unadjusted": (dict(primary=(0.03, 0.04, 0.045)), ("null",) * 3, "not_demonstrated"),
    "opposite": (dict(primary=(0.001, 0.3, 0.5), primary_signs=(-1, 1, 1)), ("negative", "null", "null"),
                 "not_demonstrated"),
    "not converged": (dict(primary=(0.001, 0.001, 0.001), primary_converged=(True, False, True)),
                      ("positive", "not_converged", "positive"), "partial"),
    "singular": (dict(primary=(0.001, 0.001, 0.001), primary_singular=(True, False, False)), ("positive",) * 3,
                 "supported"),
}


@pytest.mark.parametrize("case", PRIMARY_CASES)
def test_primary_decisions_and_verdict(case):
    spec, statuses, expected = PRIMARY_CASES[case]
    f = evaluate(**spec)
    assert tuple(d.status for d in f.domains) == statuses
    assert f.verdict == expected
    for d in f.domains:  # the interval printed beside a decision agrees with it
        if d.status != "not_converged":
            assert (d.conf_low > 0 or d.conf_high < 0) == (d.status in ("positive", "negative"))
    assert f.domains[0].singular == (case == "singular")


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("case", PRIMARY_CASES)
def test_verdict_sentences_follow_the_decisions(case, lang):
    spec, statuses, expected = PRIMARY_CASES[case]
    t = STRINGS[lang]
    text = all_sentences(evaluate(**spec), lang)
    assert text["verdict"][0].startswith(t[f"verdict_{expected}"])
    for line, status, domain in zip(text["domain_lines"], statuses, DOMAINS):
        key = {"positive": "domain_supported", "negative": "domain_opposite", "null": "domain_not_significant",
               "not_converged": "domain_not_converged"}[status]
        assert line.startswith(t[key].split("{")[0].replace("{domain}", "") or line[:1]), line
        assert NAMES["domain"][domain] in line
    shown = [NAMES["domain"][d] for d, s in zip(DOMAINS, statuses) if s == "positive"]
    not_shown = [NAMES["domain"][d] for d, s in zip(DOMAINS, statuses) if s == "null"]
    assert present("conclusion_gain", {"c": text["conclusions"]}, t) == bool(shown)
    assert present("gain_shown", {"g": text["gain"]}, t) == bool(shown)
    if not_shown:  # the null verdict names every domain "not demonstrated"
        sentence = next(s for s in text["conclusions"] if present("conclusion_not_demonstrated", {"c": [s]}, t))
        assert all(quoted(name, lang) in sentence for name in not_shown)
    assert present("gain_not_converged", {"g": text["gain"]}, t) == ("not_converged" in statuses)
    assert present("verdict_not_converged", {"v": text["verdict"]}, t) == ("not_converged" in statuses)
    school = text["school"][0]
    assert school == (t["institution"]["finding_all"] if expected == "supported" else
                      t["institution"]["finding_none"] if expected == "not_demonstrated" else school)


def test_a_null_study_claims_no_gain_anywhere():
    f = evaluate(primary=(0.4, 0.6, 0.9), followup=(0.5, 0.6, 0.7), moderation=dict(p_values=(0.4, 0.5, 0.6)),
                 shift=(0.3, 0.4, 0.5), combined=0.4)
    assert f.gains == () and f.verdict == "not_demonstrated"
    for lang in ("ru", "en"):
        text = all_sentences(f, lang)
        for key in ("gain_shown", "followup_persists", "followup_larger", "moderation_larger", "moderation_smaller",
                    "shift_lower", "conclusion_gain", "conclusion_followup_persists", "recommend_confirm"):
            assert not present(key, text, STRINGS[lang]), (lang, key)
        assert present("conclusion_not_demonstrated", text, STRINGS[lang])
        assert text["school"][0] == STRINGS[lang]["institution"]["finding_none"]


# name -> (study spec, analysis field, expected statuses, sentence keys that must / must not appear)
SECONDARY_CASES = {
    "moderation not estimable": (
        dict(moderation=dict(estimable=(False, False, False))), "moderation",
        ("not_estimable",) * 3, ["not_estimable"], ["moderation_none", "moderation_larger", "moderation_smaller"]),
    "moderation one of three, unadjusted only": (
        dict(moderation=dict(p_values=(0.02, 0.5, 0.6))), "moderation",
        ("null",) * 3, ["moderation_none"], ["moderation_larger", "recommend_confirm"]),
    "moderation significant after Holm": (
        dict(moderation=dict(p_values=(0.001, 0.5, 0.6))), "moderation",
        ("positive", "null", "null"), ["moderation_larger", "recommend_confirm"], ["moderation_none"]),
    "moderation not converged": (
        dict(moderation=dict(p_values=(0.001, 0.001, 0.5), converged=(False, True, True))), "moderation",
        ("not_converged", "positive", "null"), ["not_converged", "moderation_larger"], ["moderation_none"]),
    "follow-up not estimable": (
        dict(followup=None), "followup", ("not_estimable",) * 3, ["not_estimable", "recommend_followup"],
        ["followup_persists", "followup_not_shown", "conclusion_followup"]),
    "follow-up persists in one": (
        dict(followup=(0.001, 0.3, 0.5)), "followup", ("positive", "null", "null"),
        ["followup_persists", "followup_not_shown", "conclusion_followup_persists"], ["not_estimable"]),
    "follow-up larger without a primary gain does not persist": (
        dict(primary=(0.4, 0.6, 0.9), followup=(0.001, 0.3, 0.5)), "followup", ("positive", "null", "null"),
        ["followup_larger"], ["followup_persists", "conclusion_followup_persists"]),
    "singular moderation fit stays a result": (
        dict(moderation=dict(p_values=(0.001, 0.5, 0.6), singular=(True, False, False))), "moderation",
        ("positive", "null", "null"), ["moderation_larger", "secondary_singular_text"], []),
}


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("case", SECONDARY_CASES)
def test_secondary_findings_and_their_sentences(case, lang):
    spec, field, statuses, must, must_not = SECONDARY_CASES[case]
    f = evaluate(**spec)
    assert tuple(x.status for x in getattr(f, field)) == statuses
    assert all(x.exploratory for x in getattr(f, field))
    for x in getattr(f, field):
        assert (x.estimate is None) == (x.status in ("not_estimable", "not_converged"))
    text = all_sentences(f, lang)
    for key in must:
        assert present(key, text, STRINGS[lang]), (key, text)
    for key in must_not:
        assert not present(key, text, STRINGS[lang]), (key, text)


def test_sensitivity_identical_to_the_primary_agrees_on_the_same_footing():
    """Rows equal to the primary (one domain significant only before Holm) agree with it: both
    are judged after Holm within their family."""
    f = evaluate(primary=(0.03, 0.2, 0.5))
    assert all(x.agrees_with_primary for a in findings.SENSITIVITY_ANALYSES for x in f.sensitivity[a])
    text = all_sentences(f, "en")
    assert present("sensitivity_agree", text, STRINGS["en"])
    assert not present("sensitivity_disagree", text, STRINGS["en"])


def test_sensitivity_that_changes_the_decision_is_named():
    f = evaluate(primary=(0.001, 0.2, 0.5), sensitivity={"completers": {"p_values": (0.4, 0.2, 0.5)}})
    assert [x.agrees_with_primary for x in f.sensitivity["completers"]] == [False, True, True]
    text = all_sentences(f, "en")
    assert any("U: completers only" in s for s in text["sensitivity"])


def test_no_sensitivity_estimated_claims_no_agreement():
    none = {"p_values": None, "estimable": (False, False, False)}
    f = evaluate(sensitivity={a: none for a in findings.SENSITIVITY_ANALYSES})
    for lang in ("ru", "en"):
        text = all_sentences(f, lang)
        assert not present("sensitivity_agree", text, STRINGS[lang])
        assert present("sensitivity_none", text, STRINGS[lang])
        assert sum(present("not_estimable", {"s": [s]}, STRINGS[lang]) for s in text["sensitivity"]) == 3


def test_combined_model_not_estimable_states_no_result():
    f = evaluate(combined=None)
    assert f.combined.status == "not_estimable"
    for lang in ("ru", "en"):
        sentence = sentences.combined_sentence(f, STRINGS[lang], NAMES, lang)
        assert STRINGS[lang]["analyses"]["combined"] in sentence
        assert not any(ch.isdigit() for ch in sentence)


def test_nonconverged_secondary_fits_are_listed_in_the_checks():
    f = evaluate(sensitivity={"completers": {"p_values": (0.001, 0.001, 0.001), "converged": (True, False, True)}})
    assert f.checks.secondary_not_converged == (("completers", "professional"),)
    text = all_sentences(f, "en")
    assert any("completers only (P)" in s for s in text["checks"])


@pytest.mark.parametrize("d,word", [(0.0, "negligible"), (0.19, "negligible"), (0.2, "small"), (-0.49, "small"),
                                    (0.5, "medium"), (0.79, "medium"), (0.8, "large"), (-1.3, "large")])
def test_effect_magnitude_follows_cohens_benchmarks(d, word):
    assert findings.effect_magnitude(d) == word


def test_effect_size_word_and_number_come_from_the_same_d():
    f = evaluate(primary=(0.001, 0.001, 0.001))
    text = all_sentences(f, "ru")
    for sentence, domain in zip(text["gain"], f.domains):
        # The sentence names the d it states (set as d with subscript ppc2 by the typesetting pass).
        assert "$d_{\\mathrm{ppc2}}$ = " + f"{domain.d:.2f}".replace(".", ",") in sentence
        assert STRINGS["ru"]["effect_size_words"][findings.effect_magnitude(domain.d)] in sentence


def test_followup_sentences_give_the_respondents_per_cohort():
    f = evaluate(followup=(0.001, 0.3, 0.5))
    assert f.followup[0].n_by_cohort == (("program", 51), ("comparison", 53))
    sentence = all_sentences(f, "en")["followup"][0]
    assert "51 respondents in the program cohort and 53 respondents in the comparison cohort" in sentence


def test_design_and_limitations_state_the_configured_study():
    f = evaluate()
    assert f.study.followup_months == 3.0
    for lang in ("ru", "en"):
        t = STRINGS[lang]
        lines = design.design_sentences(f, CONFIG, t, NAMES, lang)
        assert any("15.09.2025" in s or "2025-09-15" in s for s in lines)
        assert any("3,0" in s or "3.0" in s for s in lines)
        hypothesis = design.hypothesis_sentences(f, CONFIG, t, lang)
        assert CONFIG["study"]["hypothesis"][lang] in hypothesis[0]
        assert hypothesis[1] == t["design"]["primary_outcome_missing"]
        limitations = design.limitation_sentences(f, t, NAMES, lang)
        assert len(limitations) == 5 and any("47" in s for s in limitations)  # 52 of 110 at follow-up


# --------------------------------------------------------------------------- measurement invariance

INVARIANCE_NAMES = {**NAMES, "item": {"uk3": "Item three"}}


def test_invariance_findings_read_the_decisions():
    f = evaluate(invariance=("scalar", "partial_scalar", "too_few"),
                 invariance_cohorts={"program": "metric", "comparison": "too_few"}).invariance
    assert [x.level for x in f] == ["scalar", "partial_scalar", "not_estimable"]
    assert f[1].freed_items == ("uk3",) and f[1].means_comparable and f[0].means_comparable
    assert f[2].reason == "too_few" and not f[2].assessed
    assert f[0].cohorts == (("program", "metric"), ("comparison", "too_few"))
    metric = evaluate(invariance=("metric", "configural", "none")).invariance
    assert [x.level for x in metric] == ["metric", "configural", "none"]
    assert not any(x.means_comparable for x in metric)


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_a_sentence_per_domain_says_which_level_holds_and_what_it_allows(lang):
    t = STRINGS[lang]
    f = evaluate(invariance=("scalar", "partial_scalar", "too_few"), invariance_cohorts={"program": "metric"})
    lines = sentences.invariance_sentences(f, t, INVARIANCE_NAMES, lang)
    assert len(lines) == 3
    for line, domain in zip(lines, DOMAINS):
        assert quoted(NAMES["domain"][domain], lang) in line
    stem = lambda key: max(t["invariance"][key].replace("}", "{").split("{")[::2], key=len)  # noqa: E731
    assert stem("scalar") in lines[0] and stem("partial_scalar") in lines[1] and stem("too_few") in lines[2]
    assert quoted("Item three", lang) in lines[1]
    assert t["invariance"]["levels"]["metric"] in lines[1]  # the program cohort fitted on its own
    assert ("200" in lines[0]) and ("60" in lines[2])


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_limitations_name_the_domains_without_scalar_invariance_and_the_freed_items(lang):
    t = STRINGS[lang]
    lim = t["limitations"]
    scalar = design.limitation_sentences(evaluate(), t, INVARIANCE_NAMES, lang)
    assert len(scalar) == 5
    mixed = design.limitation_sentences(evaluate(invariance=("scalar", "partial_scalar", "metric")), t,
                                        INVARIANCE_NAMES, lang)
    line = next(s for s in mixed if lim["invariance"].split("{")[0] in s)
    assert quoted(NAMES["domain"]["professional"], lang) in line and quoted("Item three", lang) in line
    assert quoted(NAMES["domain"]["subject_methodical"], lang) in line
    assert quoted(NAMES["domain"]["universal"], lang) not in line
    missing = design.limitation_sentences(evaluate(invariance=("scalar", "scalar", "too_few")), t,
                                          INVARIANCE_NAMES, lang)
    assert any(lim["invariance_not_assessed"].split("{")[0] in s for s in missing)
    assert not any(lim["invariance"].split("{")[0] in s for s in missing)


# --------------------------------------------------------------------------- multiplicity


def test_holm_equals_r_p_adjust():
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") -> 0.03 0.06 0.06 0.02
    assert multiplicity.holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # R: p.adjust(c(0.02, NA, 0.5), "holm") -> 0.04 NA 0.5
    out = multiplicity.holm([0.02, np.nan, 0.5])
    assert out[0] == pytest.approx(0.04) and np.isnan(out[1]) and out[2] == pytest.approx(0.5)


def test_significance_predicate():
    assert multiplicity.significant(0.049) and not multiplicity.significant(0.05)
    assert not multiplicity.significant(np.nan) and not multiplicity.significant(None)
    assert multiplicity.significant(np.array([0.01, 0.2, np.nan])).tolist() == [True, False, False]


# --------------------------------------------------------------------------- secondary fits


def synthetic_scores(communication_constant: bool, seed: int = 3) -> pd.DataFrame:
    """Scores of 12 schools (6 per cohort), 5 participants each, pre and post of one domain and
    the communication scale at pre."""
    rng = np.random.default_rng(seed)
    rows = []
    for school in range(12):
        cohort = "program" if school < 6 else "comparison"
        comm = 3.0 if communication_constant else rng.uniform(2, 4.5)
        for person in range(5):
            key = f"S{school}P{person}"
            base = rng.normal(3, 0.5)
            for wave, gain in (("pre", 0.0), ("post", 0.3 + 0.3 * (cohort == "program"))):
                rows.append({"participant_key": key, "institution": f"S{school}", "cohort": cohort, "wave": wave,
                             "domain": "universal", "score": base + gain + rng.normal(0, 0.3), "careless": False,
                             "role": "deputy", "years_in_management": 5.0})
            rows.append({"participant_key": key, "institution": f"S{school}", "cohort": cohort, "wave": "pre",
                         "domain": "communication", "score": comm, "careless": False, "role": "deputy",
                         "years_in_management": 5.0})
    return pd.DataFrame(rows)


def test_every_secondary_fit_records_its_status_and_an_aliased_moderation_is_not_estimable():
    from dpo_eval.analysis.sensitivity import sensitivity_analyses

    rows = {r["analysis"]: r for r in sensitivity_analyses(synthetic_scores(False), "universal", [])}
    for analysis in ("careless_excluded", "completers", "moderation_communication"):
        assert rows[analysis]["estimable"] and rows[analysis]["converged"] in (True, False)
        assert rows[analysis]["singular"] in (True, False)
    assert not rows["followup"]["estimable"] and rows["followup"]["converged"] is None  # no follow-up wave
    # Every school rated communication alike: the moderation term is aliased, not a result.
    rows = {r["analysis"]: r for r in sensitivity_analyses(synthetic_scores(True), "universal", [])}
    moderation = rows["moderation_communication"]
    assert not moderation["estimable"] and "aliased" in moderation["note"]
