"""Longitudinal measurement invariance: agreement with lavaan on stored designs, the injected
intercept shift found and freed, the demo study invariant, small samples and failed fits
reported without numbers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, simulate
from dpo_eval.analysis import cfa
from dpo_eval.analysis import invariance as inv
from dpo_eval.core.codebook import load_codebook
from dpo_eval.ingest import ingest_competencies
from dpo_eval.core.registry import load_registry
from dpo_eval.ingest.pseudonymise import DEMO_SECRET
from dpo_eval.simulation_studies.coverage import study_config

REFERENCE = REPO / "tests" / "reference" / "invariance"
LAVAAN_SCRIPT = REPO / "tests" / "reference" / "invariance_lavaan.R"
DESIGNS = sorted(path.name[: -len(".lavaan.csv")] for path in REFERENCE.glob("*.lavaan.csv"))
# The generated study of the stored "shifted_*" frames (see tests/reference/invariance_lavaan.R).
SHIFTED_STUDY = ("--seed", "24", "--schools", "120", "--needs", "20", "--intercept-shift", "pk3=0.6")
# The partial scalar model stored for lavaan: the item the module frees (tested below).
FREED = {"shifted_professional": ["pk3"]}
LAVAAN_MEASURES = {"chisq": "chisq", "df": "df", "pvalue": "p_value", "cfi": "cfi", "tli": "tli",
                   "rmsea": "rmsea", "rmsea.ci.lower": "rmsea_low", "rmsea.ci.upper": "rmsea_high",
                   "srmr": "srmr", "chisq.scaled": "chisq_scaled",
                   "chisq.scaling.factor": "scaling_factor", "pvalue.scaled": "p_value_scaled"}
LAVAAN_TESTS = {"lr.chisq": "lr_chisq", "lr.df": "lr_df", "lr.pvalue": "lr_p_value",
                "lr.chisq.scaled": "lr_chisq_scaled", "lr.pvalue.scaled": "lr_p_value_scaled"}
BELOW = {"metric": "configural", "scalar": "metric", inv.PARTIAL: "metric"}
CODEBOOK = load_codebook(REPO / "config" / "codebook.yaml")
ITEMS = {domain: [item.id for item in CODEBOOK.items_of(domain)]
         for domain in ("universal", "professional", "subject_methodical")}


def close(ours: float, theirs: float, rel: float = 1e-4) -> bool:
    """Relative agreement; exact zeros (RMSEA and its lower bound at a perfect fit) must match."""
    return abs(ours - theirs) <= rel * abs(theirs) + 1e-10


def python_fits(frame: pd.DataFrame, freed_items: list[str]) -> dict[str, cfa.CfaFit]:
    items = [name[: -len(".pre")] for name in frame.columns if name.endswith(".pre")]
    data = frame.to_numpy(dtype=float)
    models = {level: inv.longitudinal_model(len(items), level) for level in inv.LEVELS}
    if freed_items:
        freed = tuple(items.index(item) for item in freed_items)
        models[inv.PARTIAL] = inv.longitudinal_model(len(items), "scalar", freed)
    return {name: cfa.fit_ml(model, data) for name, model in models.items()}


def compare_with_lavaan(frame: pd.DataFrame, lavaan: pd.DataFrame, freed: list[str]) -> list[str]:
    """Every fit measure (normal-theory and Satorra-Bentler), likelihood-ratio test and
    standardised loading that differs from lavaan's by more than 1e-4 relative."""
    fits = python_fits(frame, freed)
    wrong = []
    for (model, measure), value in lavaan.set_index(["model", "measure"])["value"].items():
        fit = fits[model]
        assert fit.converged and fit.proper, model
        if measure in LAVAAN_TESTS:
            ours = float(cfa.likelihood_ratio_test(fit, fits[BELOW[model]])[LAVAAN_TESTS[measure]])
        elif measure.startswith("std:"):
            column = list(frame.columns).index(measure[4:])
            wave = 0 if measure.endswith(".pre") else 1
            ours = float(fit.standardised_loadings()[column, wave])
        else:
            ours = float({**cfa.fit_measures(fit), **cfa.scaled_test(fit)}[LAVAAN_MEASURES[measure]])
        if not close(ours, value):
            wrong.append(f"{model} {measure}: ours {ours!r}, lavaan {value!r}")
    return wrong


@pytest.mark.parametrize("design", DESIGNS)
def test_fit_statistics_and_standardised_loadings_agree_with_lavaan(design):
    frame = pd.read_csv(REFERENCE / f"{design}.csv")
    lavaan = pd.read_csv(REFERENCE / f"{design}.lavaan.csv")
    models = len(lavaan["model"].unique())
    assert len(lavaan) == models * (12 + frame.shape[1]) + (models - 1) * len(LAVAAN_TESTS)
    assert not compare_with_lavaan(frame, lavaan, FREED.get(design, []))


def test_the_stored_designs_cover_all_levels_and_a_partial_model():
    assert len(DESIGNS) == 6
    models = pd.concat(pd.read_csv(REFERENCE / f"{d}.lavaan.csv") for d in DESIGNS)["model"]
    assert set(models) == {*inv.LEVELS, inv.PARTIAL}


def test_a_wrong_model_disagrees_with_lavaan():
    """The comparison can fail: dropping the cross-wave residual covariances changes every
    statistic by far more than the tolerance."""
    frame = pd.read_csv(REFERENCE / "demo_universal.csv")
    lavaan = pd.read_csv(REFERENCE / "demo_universal.lavaan.csv")
    model = inv.longitudinal_model(6, "configural")
    free = {name: array.copy() for name, array in model.free.items()}
    free["theta"][~np.eye(12, dtype=bool)] = -1
    used = np.unique(np.concatenate([a[a >= 0] for a in free.values()]))
    renumber = {old: new for new, old in enumerate(used)}
    free = {name: np.vectorize(lambda v: renumber.get(v, -1))(array) for name, array in free.items()}
    fit = cfa.fit_ml(cfa.CfaModel(free, model.fixed), frame.to_numpy(dtype=float))
    theirs = lavaan.set_index(["model", "measure"])["value"]
    assert fit.df == theirs[("configural", "df")] + 6
    assert not close(cfa.fit_measures(fit)["chisq"], theirs[("configural", "chisq")])


@pytest.mark.requires_tool("lavaan")
def test_the_stored_lavaan_numbers_are_what_the_script_gives(tmp_path):
    out = tmp_path / "lavaan.csv"
    subprocess.run([shutil.which("Rscript"), str(LAVAAN_SCRIPT), str(REFERENCE / "shifted_professional.csv"),
                    "pk3", str(out)], check=True, capture_output=True)
    live = pd.read_csv(out)
    stored = pd.read_csv(REFERENCE / "shifted_professional.lavaan.csv")
    assert list(live["measure"]) == list(stored["measure"])
    assert np.allclose(live["value"], stored["value"], rtol=1e-8, atol=1e-12)


def ingested_responses(folder: Path) -> pd.DataFrame:
    config = study_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8")),
                          folder / "raw", REPO / "config" / "codebook.yaml")
    result, _ = ingest_competencies(config, CODEBOOK, load_registry(config["registry"]), DEMO_SECRET.encode())
    return result.responses


@pytest.fixture(scope="module")
def shifted_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shifted")
    truth = simulate(folder, *SHIFTED_STUDY)
    responses = ingested_responses(folder)
    table, loadings = inv.invariance_table(responses, ITEMS, inv.Criteria())
    return truth, responses, table, loadings


def test_the_generator_records_the_injected_shift(shifted_study):
    truth = shifted_study[0]
    assert truth["non_invariance"] == {"wave": "post", "intercept_shift": {"pk3": 0.6},
                                       "domain": {"pk3": "professional"}}
    assert "intercept_shift" not in truth["spec"]


def test_the_stored_shifted_frames_are_the_generated_study(shifted_study):
    responses = shifted_study[1]
    for domain, items in ITEMS.items():
        stored = pd.read_csv(REFERENCE / f"shifted_{domain}.csv")
        pd.testing.assert_frame_equal(inv.wide_frame(responses, domain, items).reset_index(drop=True),
                                      stored, check_dtype=False)


def test_injected_intercept_shift_fails_the_scalar_step_and_partial_invariance_frees_that_item(shifted_study):
    truth, _, table, _ = shifted_study
    (item, shift), = truth["non_invariance"]["intercept_shift"].items()
    shifted_domain = truth["non_invariance"]["domain"][item]
    for domain in ITEMS:
        for group in ("all", "program", "comparison"):
            rows = table[(table["domain"] == domain) & (table["group"] == group)].set_index("model")
            assert (rows["status"] == "ok").all(), (domain, group)
            assert rows.loc["metric", "decision"] == "holds"
            held = inv.level_held(table, domain, group)
            if domain == shifted_domain:
                assert rows.loc["scalar", "decision"] == "rejected", group
                assert rows.loc["scalar", "delta_cfi"] < -0.01
                assert rows.loc["scalar", "lr_p_value"] < 0.001
                assert rows.loc[inv.PARTIAL, "freed_items"] == item
                assert rows.loc[inv.PARTIAL, "decision"] == "holds"
                assert (held.level, held.freed_items) == (inv.PARTIAL, (item,))
            else:
                assert rows.loc["scalar", "decision"] == "holds", (domain, group)
                assert inv.PARTIAL not in rows.index
                assert held.level == "scalar" and held.means_comparable


def test_without_the_shift_the_same_study_is_scalar_invariant(tmp_path):
    simulate(tmp_path, *SHIFTED_STUDY[:-2])
    table, _ = inv.invariance_table(ingested_responses(tmp_path), {"professional": ITEMS["professional"]},
                                    inv.Criteria())
    assert inv.level_held(table, "professional").level == "scalar"
    assert inv.PARTIAL not in set(table["model"])


@pytest.mark.pipeline
def test_demo_study_scalar_invariance_is_not_rejected(demo_run):
    table = pd.read_csv(demo_run / "results" / "tables" / "invariance.csv", keep_default_na=False,
                        na_values=[""])
    for domain in ITEMS:
        held = inv.level_held(table, domain)
        assert held.level == "scalar", held
        assert held.n >= 180
    # The cohorts of the demo are below min_n: a row that says so, without numbers.
    small = table[table["status"] == "too_few"]
    assert len(small) and small[list(inv.MEASURES)].isna().all().all()
    assert small["note"].str.contains("fewer than min_n = 100").all()
    loadings = pd.read_csv(demo_run / "results" / "tables" / "invariance_loadings.csv")
    assert set(loadings["model"]) == set(inv.LEVELS)
    assert loadings["loading_std"].between(0.3, 0.9).all()


@pytest.mark.pipeline
def test_the_stored_demo_frames_are_the_demo_study(demo_run):
    responses = pd.read_csv(demo_run / "results" / "clean" / "responses.csv")
    for domain, items in ITEMS.items():
        stored = pd.read_csv(REFERENCE / f"demo_{domain}.csv")
        pd.testing.assert_frame_equal(inv.wide_frame(responses, domain, items).reset_index(drop=True),
                                      stored, check_dtype=False)


def test_too_few_participants_give_rows_without_numbers():
    frame = pd.read_csv(REFERENCE / "demo_universal.csv").iloc[:40]
    rows, loadings = inv.invariance_rows(frame, "universal", "all", ITEMS["universal"], inv.Criteria())
    assert [row["status"] for row in rows] == ["too_few"] * 3 and not loadings
    assert all(np.isnan(row.get("chisq", np.nan)) for row in rows)
    assert "40 participants" in rows[0]["note"]


def test_a_failed_fit_gives_a_row_that_says_so_and_no_numbers():
    frame = pd.read_csv(REFERENCE / "demo_universal.csv")
    frame["uk2.post"] = frame["uk1.post"]  # a singular covariance matrix: no ML solution
    rows, loadings = inv.invariance_rows(frame, "universal", "all", ITEMS["universal"], inv.Criteria())
    assert {row["status"] for row in rows} == {"not_converged"} and not loadings
    assert all("chisq" not in row for row in rows)
    assert [row["decision"] for row in rows] == ["not_tested"] * 3
    table = pd.DataFrame(rows).reindex(columns=list(inv.COLUMNS))
    assert inv.level_held(table, "universal").level == "not_estimable"


def test_a_poorly_fitting_configural_model_supports_no_level():
    frame = pd.read_csv(REFERENCE / "shifted_professional.csv")  # configural CFI 0.938
    strict = inv.Criteria(min_cfi=0.95)
    rows, _ = inv.invariance_rows(frame, "professional", "all", ITEMS["professional"], strict)
    table = pd.DataFrame(rows).reindex(columns=list(inv.COLUMNS))
    assert rows[0]["decision"] == "rejected"
    assert inv.level_held(table, "professional").level == "none"
    rows, _ = inv.invariance_rows(frame, "professional", "all", ITEMS["professional"], inv.Criteria())
    assert rows[0]["decision"] == "holds"


def test_chen_cut_offs():
    criteria = inv.Criteria()
    assert not criteria.rejects(-0.010, 0.015)
    assert criteria.rejects(-0.0101, 0.0)
    assert criteria.rejects(0.0, 0.0151)
    assert inv.Criteria(max_cfi_drop=0.02).rejects(-0.015, 0.0) is False


def test_degrees_of_freedom_of_the_levels():
    assert [inv.longitudinal_model(6, level).degrees_of_freedom() for level in inv.LEVELS] == [47, 52, 57]
    assert inv.longitudinal_model(6, "scalar", (2,)).degrees_of_freedom() == 56
    assert inv.longitudinal_model(4, "configural").degrees_of_freedom() == 15
