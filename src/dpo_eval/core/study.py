"""The design of the study, in one place: its waves and their order, its cohorts and the
stakeholder groups of the needs assessment. Every module that needs one of these imports it
from here, so that they cannot drift apart."""

from __future__ import annotations

# Questionnaire waves in time order: entry (pre), exit (post) and follow-up.
WAVES = ("pre", "post", "followup")
# Waves of ratings: "then" is the retrospective pre rating given at exit (then-test), placed
# between pre and post.
RATING_WAVES = ("pre", "then", "post", "followup")
WAVE_ORDER = {wave: position for position, wave in enumerate(RATING_WAVES)}
# The two waves the primary difference-in-differences model compares.
MODEL_WAVES = ("pre", "post")

# The program cohort took the joint program; the comparison cohort the regular IRO course.
PROGRAM, COMPARISON = COHORTS = ("program", "comparison")

# Who answered the needs assessment (instrument B), in the order the reports list them; these
# are also the institution types of the registry.
STAKEHOLDER_GROUPS = ("university", "iro", "school")

# The table registry: every table the pipeline writes, by folder of results/ (the workflow's
# targets, the data dictionary's check and the reproduction package are derived from it).
CLEAN_TABLES = ("responses", "respondents", "scores", "needs", "needs_formats", "flow_waves",
                "institutions", "input_manifest")
ANALYSIS_TABLES = ("flow", "descriptives", "reliability", "needs", "needs_distribution", "needs_tests",
                   "needs_formats", "did", "fixed_effects", "variance_components", "model_checks",
                   "effect_sizes", "response_shift", "sensitivity", "qq", "sample", "municipalities",
                   "score_benchmarks", "needs_benchmarks", "invariance", "invariance_loadings")
AUDIT_TABLES = ("match_audit", "duplicates", "invalid_values", "disclosure_control")
# Published tables of results/reports/: the manifest of every number the reports show.
REPORT_TABLES = ("released_cells",)

# The tables the evaluation report and the school reports read (results/tables/{name}.csv). Here,
# not in dpo_eval.reporting, so that the workflow can list them without importing the reporting
# libraries every time it builds its DAG.
EVALUATION_TABLES = ("did", "flow", "descriptives", "sample", "municipalities", "reliability", "needs",
                     "needs_tests", "needs_formats", "needs_distribution", "effect_sizes", "model_checks",
                     "variance_components", "sensitivity", "response_shift", "qq", "invariance")
INSTITUTION_TABLES = ("score_benchmarks", "needs_benchmarks", "did", "model_checks")
