"""Sentences on the study itself: the hypothesis and primary outcome, the program, the cohorts,
the waves and the follow-up interval (from the configuration's ``study`` section, documented
in config/README.md), and the limitations, worded from ``findings.StudyFinding`` and the
primary and follow-up findings."""

from __future__ import annotations

from dpo_eval.reporting.findings import EvaluationFindings
from dpo_eval.reporting.formatting import format_date, format_share, join_words
from dpo_eval.typography import counted, format_number


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


def limitation_sentences(findings: EvaluationFindings, strings: dict, names: dict, lang: str) -> list[str]:
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
    out.append(lim["attrition"])
    out.append(lim["self_report"])
    out.append(lim["exploratory"])
    return out
