"""The seeded generator: reproducible bytes, realistic export shapes, truthful ground truth."""

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, simulate
from dpo_eval.core.readers import read_export
from dpo_eval.simulate import DEMO_SEED, FILES


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_bundled_demo_study_is_reproduced_byte_for_byte(tmp_path):
    truth = simulate(tmp_path, "--seed", str(DEMO_SEED))
    assert digests(tmp_path / "raw") == digests(REPO / "data" / "raw")
    bundled = json.loads((REPO / "data" / "truth.json").read_text(encoding="utf-8"))
    assert truth == bundled


def test_other_seed_gives_other_data(tmp_path):
    simulate(tmp_path, "--seed", "7", "--schools", "20", "--needs", "40")
    assert digests(tmp_path / "raw")["pre_entry_google.csv"] != digests(REPO / "data" / "raw")["pre_entry_google.csv"]


def test_demo_study_has_the_planned_size(demo_truth):
    assert demo_truth["institutions"]["schools"] == 60
    assert len(set(demo_truth["files"])) == 5
    assert 220 <= demo_truth["participants"]["enrolled"] <= 270
    municipalities = pd.read_csv(REPO / "data" / "raw" / FILES["institutions"])["municipality"]
    assert municipalities.nunique() >= 10
    assert sum(demo_truth["needs"]["respondents"].values()) == 300
    assert set(demo_truth["needs"]["respondents"]) == {"university", "iro", "school"}
    waves = demo_truth["waves"]
    assert waves["followup"]["participants"] < waves["post"]["participants"] < waves["pre"]["participants"] + 10


def test_exports_have_their_real_shapes():
    raw = REPO / "data" / "raw"
    pre = read_export(raw / FILES["pre"])
    assert pre.encoding == "utf-8" and pre.delimiter == ","
    assert pre.frame.columns[0] == "Отметка времени"
    assert any(c.endswith("]") and "[" in c for c in pre.frame.columns)
    assert not (raw / FILES["pre"]).read_bytes().startswith(b"\xef\xbb\xbf")
    needs_bytes = (raw / FILES["needs"]).read_bytes()
    assert needs_bytes.startswith(b"\xef\xbb\xbf")
    followup_bytes = (raw / FILES["followup"]).read_bytes()
    followup = read_export(raw / FILES["followup"])
    assert followup.encoding == "cp1251" and followup.delimiter == ";"
    assert b"\r\n" in followup_bytes
    post = read_export(raw / FILES["post"], sheet="Ответы")
    assert post.sheet == "Ответы" and "Время создания" in post.frame.columns
    labels = set(pre.frame.iloc[:, 9:].stack())
    # Feminine forms, "ё" and "е" spellings and stray spaces all occur, as in real exports.
    assert "Скорее согласна" in labels and "Скорее согласен" in labels
    assert any("чём" in label for label in labels) and any("чем" in label for label in labels)
    assert any("  " in label or label != label.strip() for label in labels)
    for column in ("Адрес электронной почты", "Фамилия, имя, отчество", "Контактный телефон"):
        assert pre.frame[column].str.len().min() > 5
    assert all(e.split("@")[1].endswith((".example", "example.com", "example.org", "example.net", ".test"))
               for e in pre.frame["Адрес электронной почты"])


def test_ground_truth_lists_every_injected_defect(demo_truth):
    subs = pd.DataFrame(demo_truth["submissions"])
    for wave, counts in demo_truth["waves"].items():
        rows = subs[subs["wave"] == wave]
        assert counts["rows"] == len(rows)
        assert counts["duplicates"] == int((~rows["kept"]).sum()) > 0
    assert subs["code_defects"].map(len).gt(0).mean() > 0.15
    assert demo_truth["out_of_range"] and all(int(o["value"]) not in range(1, 6)
                                              for o in demo_truth["out_of_range"])
    assert sum(demo_truth["skipped_cells"].values()) > 0
    assert set(demo_truth["true_effects"]["score_did"]) >= {"universal", "professional", "subject_methodical"}


def test_zero_contamination_gives_clean_data(tmp_path):
    truth = simulate(tmp_path, "--contamination", "0", "--schools", "16", "--needs", "30")
    subs = pd.DataFrame(truth["submissions"])
    assert subs["kept"].all()
    assert subs["code_defects"].map(len).eq(0).all()
    assert subs["careless"].isna().all()
    assert truth["out_of_range"] == [] and sum(truth["skipped_cells"].values()) == 0


def test_fewer_schools_than_municipalities_is_a_usage_error(tmp_path, capsys):
    from dpo_eval.simulate.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--schools", "10", "--out", str(tmp_path / "raw")])
    assert stop.value.code == 2
    assert "--schools 10 is fewer than --municipalities 14" in capsys.readouterr().err
    assert not (tmp_path / "raw").exists()
