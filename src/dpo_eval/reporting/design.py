"""Sentences on the study itself: the hypothesis and primary outcome, the program, the cohorts,
the waves and the follow-up interval (from the configuration's ``study`` section, documented
in config/README.md), and the limitations, worded from ``findings.StudyFinding`` and the
primary and follow-up findings."""

from __future__ import annotations

from dpo_eval.reporting.findings import EvaluationFindings
from dpo_eval.reporting.formatting import format_date, format_share, join_words, quote
from dpo_eval.reporting.typography import counted, format_number


def localised(value, lang: str) -> str | None:
    """A configured text in the reader's language ({ru: ..., en: ...}), or None."""
    if not value:
        return None
    return value.get(lang) if isinstance(value, dict) else str(value)


def hypothesis_sentences(findings: EvaluationFindings, config: dict, strings: dict, lang: str) -> list[str]:
    """The hypothesis the verdict answers and its primary outcome, as configured."""
    d = strings["design"]
    study = findings.study
    hypothesis, outcome = localised(study.hypothesis, lang), localised(study.primary_outcome, lang)
    return [d["hypothesis"].format(text=hypothesis) if hypothesis else d["hypothesis_missing"],
            d["primary_outcome"].format(text=outcome) if outcome else d["primary_outcome_missing"]]


def cohort_counts(pairs, noun: dict | None, strings: dict, lang: str) -> str:
    """"31 schools in the program cohort and 29 in the comparison cohort" (bare numbers
    without ``noun``)."""
    return join_words([strings["design"]["in_cohort"].format(
        n=counted(n, noun, lang) if noun else format_number(n, lang, 0), cohort=strings["cohorts_genitive"][c])
        for c, n in pairs], strings)


def design_sentences(findings: EvaluationFindings, config: dict, strings: dict, names: dict, lang: str) -> list[str]:
    """The program, the cohorts with their sizes, the wave dates and the follow-up interval."""
    d = strings["design"]
    study = findings.study
    program = config["study"]["program"][lang]
    content = localised(study.program_content, lang)
    out = [d["program"].format(program=program, content=content) if content else d["program_only"].format(program=program)]
    if study.program_hours:
        out.append(d["hours"].format(hours=counted(int(study.program_hours), strings["nouns"]["hour"], lang)))
    comparison = localised(study.comparison_course, lang)
    out.append(d["comparison"].format(course=comparison) if comparison else d["comparison_missing"])
    out.append(d["cohorts"].format(schools=cohort_counts(study.schools, strings["nouns"]["school"], strings, lang),
                                   participants=cohort_counts(study.participants, None, strings, lang)))
    if study.wave_dates:
        out.append(d["waves"].format(dates="; ".join(f"{strings['waves'][w]} — {format_date(day, lang)}"
                                                     if lang == "ru" else f"{strings['waves'][w]}: {format_date(day, lang)}"
                                                     for w, day in study.wave_dates)))
    else:
        out.append(d["waves_missing"])
    if study.followup_months is not None:
        out.append(d["followup_interval"].format(months=format_number(study.followup_months, lang, 1)))
    out.append(d["self_report"])
    return out


def invariance_limitations(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> list[str]:
    """A line naming the domains where scalar invariance does not hold (with their level and
    the freed items), and one for the domains where it could not be assessed."""
    lim = strings["limitations"]
    levels = strings["invariance"]["levels"]
    out = []
    weaker = [f for f in findings.invariance if f.assessed and f.level != "scalar"]
    if weaker:
        described = []
        for f in weaker:
            level = levels[f.level]
            if f.freed_items:
                level = lim["invariance_freed"].format(level=level, items=join_words(
                    [quote(names["item"][i], lang) for i in f.freed_items], strings))
            described.append(lim["invariance_domain"].format(domain=quote(names["domain"][f.domain], lang),
                                                             level=level))
        out.append(lim["invariance"].format(domains=join_words(described, strings)))
    missing = [quote(names["domain"][f.domain], lang) for f in findings.invariance if not f.assessed]
    if missing:
        out.append(lim["invariance_not_assessed"].format(domains=join_words(missing, strings)))
    return out


def limitation_sentences(findings: EvaluationFindings, strings: dict, names: dict, lang: str,
                         sensitivity_table: int | str = "") -> list[str]:
    """The limitations a methodologist would list, each with its numbers: schools per cohort
    (the unit of assignment), quasi-experimental assignment, attrition and selective
    follow-up, self-report only (no objective outcome), and secondary analyses exploratory."""
    lim = strings["limitations"]
    study = findings.study
    out = [lim["assignment"].format(schools=cohort_counts(study.schools, strings["nouns"]["school"], strings, lang))]
    if study.followup_share:
        out.append(lim["followup"].format(shares=join_words(
            [lim["share_in"].format(share=format_share(share, lang), cohort=strings["cohorts_genitive"][c])
             for c, share in study.followup_share], strings)))
    else:
        out.append(lim["no_followup"])
    out.append(lim["attrition"].format(table=sensitivity_table))
    out += invariance_limitations(findings, strings, names, lang)
    out.append(lim["self_report"])
    out.append(lim["exploratory"])
    return out


def instrument_sentence(codebook, domains: list[str], table: int, strings: dict, names: dict, lang: str) -> str:
    """The scales as the codebook defines them: items and reverse-keyed items per domain."""
    items = [strings["instrument_items"].format(domain=names["domain"][d], n=len(codebook.items_of(d)),
                                                reverse=sum(i.reverse for i in codebook.items_of(d)))
             for d in domains]
    return strings["instrument_text"].format(items="; ".join(items), table=table)


def needs_sentence(groups: list[str], sizes: dict, numbers: dict, strings: dict, lang: str) -> str:
    """Who answered the needs assessment, with the group sizes, and where its results are."""
    answered = join_words([f"{lower_first(strings['stakeholder_plural'][g])} ({format_number(sizes[g], lang, 0)})"
                           for g in groups], strings)
    return strings["needs_text"].format(groups=answered, **numbers)


def lower_first(text: str) -> str:
    """"University representatives" -> "university representatives"; "IRO ..." stays."""
    return text[:1].lower() + text[1:] if len(text) > 1 and text[1].islower() else text
