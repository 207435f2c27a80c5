"""Seeded generator of a realistic DPO evaluation study, with its ground truth.

The generator writes what researchers really export from their survey tools, defects included,
and a machine-readable ground truth that the tests compare the pipeline against:

* ``pre_entry_google.csv``: entry diagnostics as a Google Forms UTF-8 CSV ("Отметка времени",
  grid questions as ``Вопрос [строка]`` headers, Russian Likert labels with feminine forms, case,
  spacing and "ё" variants, e-mail, name and phone columns);
* ``post_exit_yandex.xlsx``: exit diagnostics with retrospective "then" items as a Yandex
  Forms-style XLSX (sheet "Ответы", plus a summary sheet; start and finish times);
* ``followup_excel_ru.csv``: the delayed follow-up as Excel in a Russian locale writes a CSV
  (cp1251, ``;``-separated, CRLF, labels recoded to numbers by hand, a few out-of-range values);
* ``needs_assessment_google.csv``: the needs assessment of university, IRO and school
  respondents (UTF-8 with BOM, checkbox answers joined by ", ");
* ``institutions.csv``: the registry of institutions (schools, the university and the IRO).

The data-generating model, per participant *i* in school *s* of municipality *m*, domain *d*
and wave *w*: ``theta = mu_d + u_m + u_s + u_id + time_d*[w=post] + did_d*[w=post]*[program]
+ e_iw``; item responses are ``round(theta + b_k + e_ik)`` clipped to 1..5 and mirrored for
reverse-keyed items. The retrospective "then" rating is the pre-wave latent value lowered by a
cohort-specific response shift. Because rounding and clipping bend the scale, the true effects
on the scale-score metric (the estimand of the pipeline) are computed by Monte Carlo with
common random numbers and stored next to the latent ones.

The package, by what it writes:

* ``design``: the true parameters and defect rates, the population (schools, partners,
  participants) and who answers which wave;
* ``responses``: the latent model, the item answers and each wave's submissions;
* ``defects``: typed-code defects, careless responding, duplicates, skipped items, Likert label
  variants, out-of-range cells;
* ``needs``: the needs assessment (instrument B);
* ``exports``: the file formats (Google and Yandex Forms, Excel cp1251, BOM, the registry);
* ``truth``: the true score-metric effects, the ledger of submissions and the truth JSON;
* ``generator``: the order of the draws from the one seeded stream, ``simulate_study``;
* ``cli``: the command line.

Usage: ``python -m dpo_eval.simulate --seed 20251127 --out data/raw`` (see ``--help``).
"""

from dpo_eval.simulate.cli import main
from dpo_eval.simulate.design import (COMPETENCY_DOMAINS, DEMO_SEED, MUNICIPALITIES, PARTNERS,
                                      ROLE_SHARES, ROLES, WAVE_DATES, Contamination, SimulationSpec)
from dpo_eval.simulate.exports import FILES
from dpo_eval.simulate.generator import simulate_study
from dpo_eval.simulate.responses import keyed_scale_score, responses_from_latent
from dpo_eval.simulate.truth import true_score_effects

__all__ = ["COMPETENCY_DOMAINS", "DEMO_SEED", "FILES", "MUNICIPALITIES", "PARTNERS", "ROLES",
           "ROLE_SHARES", "WAVE_DATES", "Contamination", "SimulationSpec", "keyed_scale_score",
           "main", "responses_from_latent", "simulate_study", "true_score_effects"]
