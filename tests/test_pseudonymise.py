"""Pseudonymisation keys and where the secret may come from."""

import pytest

from conftest import REPO
from dpo_eval.core.io import sha256_file
from dpo_eval.ingest.pseudonymise import (DEMO_SECRET, DEMO_STUDY_SHA256, SecretError, load_secret, participant_key,
                                   respondent_key)

DEMO_INPUTS = sorted((REPO / "data" / "raw").iterdir())

SETTINGS = {"secret_env": "DPO_EVAL_TEST_SECRET", "secret_file": None, "allow_demo_secret": False}


def test_key_is_a_keyed_hash_of_institution_and_code():
    key = participant_key(b"secret", "SCH001", "ХБ00101")
    assert key.startswith("P") and len(key) == 17
    assert key == participant_key(b"secret", "SCH001", "ХБ00101")
    assert key != participant_key(b"other", "SCH001", "ХБ00101")
    assert key != participant_key(b"secret", "SCH002", "ХБ00101")


# Known answers computed outside Python, with OpenSSL:
#   printf '%s' "SCH001:КМ02201" | openssl dgst -sha256 -hmac "$SECRET" | cut -c1-16 (of the digest)
# Keys already issued must stay valid: a change of the key function (encoding, separator,
# length, hash) would silently break the linkage with them, so these values are fixed.
KNOWN_PARTICIPANT_KEYS = [
    (DEMO_SECRET.encode(), "SCH001", "КМ02201", "P196b8711e91d4c8a"),
    (DEMO_SECRET.encode(), "SCH017", "АБ12345", "Pdc656671d22b8c0a"),
    (DEMO_SECRET.encode(), "IRO-KHK", "Х7", "Pb2f1a15d0808518d"),
    ("another secret".encode(), "SCH001", "КМ02201", "P62e1d6fc6f0f6bd3"),
]


@pytest.mark.parametrize("secret, institution, code, expected", KNOWN_PARTICIPANT_KEYS)
def test_participant_key_known_answers(secret, institution, code, expected):
    assert participant_key(secret, institution, code) == expected


def test_respondent_key_known_answer():
    # printf '%s' "needs_assessment_google.csv#7" | openssl dgst -sha256 -hmac "$DEMO_SECRET"
    assert respondent_key(DEMO_SECRET.encode(), "needs_assessment_google.csv", 7) == "R2ae036272ff47560"


def test_environment_variable_comes_first(monkeypatch):
    monkeypatch.setenv("DPO_EVAL_TEST_SECRET", "from-env")
    assert load_secret({**SETTINGS, "allow_demo_secret": True})[0] == b"from-env"


def test_secret_file_outside_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv("DPO_EVAL_TEST_SECRET", raising=False)
    secret = tmp_path / "keys" / "dpo.key"
    secret.parent.mkdir()
    secret.write_text("from-file\n")
    repo = tmp_path / "repo"
    assert load_secret({**SETTINGS, "secret_file": str(secret)}, tmp_path / "results", repo)[0] == b"from-file"


@pytest.mark.parametrize("inside", ["repo", "results"])
def test_secret_file_inside_repository_or_results_is_refused(monkeypatch, tmp_path, inside):
    monkeypatch.delenv("DPO_EVAL_TEST_SECRET", raising=False)
    secret = tmp_path / inside / "dpo.key"
    secret.parent.mkdir()
    secret.write_text("x")
    with pytest.raises(SecretError, match="keep the secret outside the repository and results/"):
        load_secret({**SETTINGS, "secret_file": str(secret)}, tmp_path / "results", tmp_path / "repo")


def test_no_secret_is_an_error_unless_the_demo_secret_is_allowed(monkeypatch):
    monkeypatch.delenv("DPO_EVAL_TEST_SECRET", raising=False)
    with pytest.raises(SecretError, match="set the environment variable DPO_EVAL_TEST_SECRET"):
        load_secret(SETTINGS)
    secret, origin = load_secret({**SETTINGS, "allow_demo_secret": True}, inputs=DEMO_INPUTS)
    assert secret == DEMO_SECRET.encode() and "DEMO" in origin


def test_the_demo_list_is_the_bundled_demo_study():
    assert {path.name: sha256_file(path) for path in DEMO_INPUTS} == DEMO_STUDY_SHA256


def test_demo_secret_is_refused_for_any_other_data(monkeypatch, tmp_path):
    """Decided by content, not by name: a copy of a demo file with one byte changed is refused,
    and so is a call that does not say which inputs it reads."""
    monkeypatch.delenv("DPO_EVAL_TEST_SECRET", raising=False)
    changed = tmp_path / "pre_entry_google.csv"
    changed.write_bytes((REPO / "data" / "raw" / "pre_entry_google.csv").read_bytes() + b"\n")
    inputs = [p for p in DEMO_INPUTS if p.name != changed.name] + [changed]
    with pytest.raises(SecretError, match=f"{changed} is not part of the bundled demo study"):
        load_secret({**SETTINGS, "allow_demo_secret": True}, inputs=inputs)
    with pytest.raises(SecretError, match="only be used when the inputs are checked"):
        load_secret({**SETTINGS, "allow_demo_secret": True})
    monkeypatch.setenv("DPO_EVAL_TEST_SECRET", "project-secret")
    assert load_secret({**SETTINGS, "allow_demo_secret": True}, inputs=inputs)[0] == b"project-secret"


@pytest.mark.pipeline
@pytest.mark.requires_tool("pdftotext")
def test_every_report_built_with_the_demo_secret_says_so(demo_run):
    """The demo run is keyed with the demo secret: ingest records it and the first page of every
    report carries the notice."""
    import json
    import subprocess

    record = json.loads((demo_run / "results" / "clean" / "pseudonymisation.json").read_text(encoding="utf-8"))
    assert record["demo_secret"] is True
    reports = sorted((demo_run / "results" / "reports").rglob("*.pdf"))
    assert len(reports) > 10
    for pdf in reports:
        first_page = subprocess.run(["pdftotext", "-l", "1", str(pdf), "-"], capture_output=True, text=True,
                                    check=True).stdout
        assert ("DEMO: built from the bundled demo study" in first_page
                or "ДЕМО: отчёт построен по демонстрационным данным" in first_page), pdf.name
