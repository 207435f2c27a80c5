"""The two data packages of a study, and the disclosure checks behind them.

* The reproduction package (``results/reproduction_package.zip``): pseudonymised analysis data,
  configuration, code, lock file and instructions, from which a reviewer rebuilds every table and
  the evaluation reports byte for byte. It holds no raw export, no timestamps, no recipients
  (names, e-mail addresses) and no participant codes; but the analysis needs each participant's
  institution, role, exact years in management and cohort (random intercept of the institution,
  covariates, the sample table), so it cannot be k-anonymous on them: REPRODUCE.md states the k it
  achieves, and the package is for controlled access (a data-use agreement), not for publication.
* The open data package (``results/open_data_package.zip``): the item responses with the
  quasi-identifiers coarsened (years in management in bands, no municipality or settlement, new
  participant numbers) and locally suppressed until every combination of institution, role,
  years band and cohort is shared by at least ``reports.min_cell`` participants, also among the
  respondents of each wave and among the participants who answered the same waves (the wave
  pattern is readable from the rows: rare patterns are first merged into common ones by
  dropping a wave's rows, then the quasi-identifiers are suppressed within each pattern) (k-anonymity,
  Sweeney 2002, Int. J. Uncertainty Fuzziness Knowl.-Based Syst. 10:557; local suppression as in
  sdcMicro, Templ et al. 2015, J. Stat. Softw. 67(4)). Its OPEN_DATA.md states what was coarsened,
  how many values were suppressed and the k achieved. It does not rebuild the published tables.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from dpo_eval.core.io import csv_bytes, read_csv, sha256_file, write_outputs
from dpo_eval.core.study import WAVE_ORDER

FIXED_TIME = (2025, 1, 1, 0, 0, 0)
CODE_ITEMS = ("Snakefile", "workflow", "src", "config", "reports", "requirements.lock", "requirements.in",
              "environment.yml", "pyproject.toml", "Makefile", "README.md")
# Never packaged: the recipients registry holds names and e-mail addresses of people.
EXCLUDED = ("config/recipients.csv",)
QUASI_IDENTIFIERS = ("institution", "role", "years_band", "cohort")
# Suppressed first to last. Institutions have 2 to 8 participants, so an institution can almost
# never be kept at k = 5; suppressing it first keeps role and years band for most participants
# (demo study: 307 values suppressed, against 631 when the years band goes first). The cohort
# (the comparison the study is about) goes only when nothing else helps.
SUPPRESSION_ORDER = ("institution", "years_band", "role", "cohort")
SUPPRESSED = "*"
# The retrospective "then" ratings are answered with the exit questionnaire: one wave with "post".
QUESTIONNAIRE_WAVE = {"then": "post"}
# Years in management: bands of the usual career stages of school leaders (upper bound included).
YEAR_BANDS = ((2, "0-2"), (5, "3-5"), (10, "6-10"), (20, "11-20"), (float("inf"), "21+"))

INSTRUCTIONS = """# Reproducing the evaluation from this package

This package holds the pseudonymised analysis data (results/clean/), the configuration, the
code, the locked dependencies and the checksums of the published tables and evaluation reports.
It holds no raw survey export, no participant code, no submission time and no recipients' names
or e-mail addresses (config/recipients.csv is left out; the rebuild does not send anything).

On a machine with Python 3.11 (pip and venv), in the folder where this file is:

    make setup
    .venv/bin/snakemake --cores 4 --config reproduce=True
    sha256sum -c CHECKSUMS.sha256

The second command rebuilds every table under results/tables/ and results/reports/evaluation.*.pdf
from the pseudonymised data; the third checks that they equal, byte for byte, the published ones.
With conda: `conda env create -f environment.yml`, `conda activate dpo-eval`, then the last two
commands with `snakemake` in place of `.venv/bin/snakemake`.

## Disclosure control: what was removed, and what could not be

Removed from the analysis data: every name, e-mail address, phone number and participant code
(participants are keyed by a keyed hash), the submission timestamps and response times
(results/clean/respondents.csv is not packaged: the rebuild does not use it), and the
recipients registry.

Kept, because the published analysis uses them exactly: each participant's institution (the
random intercept of the mixed models, the institution benchmarks), role and years in management
(model covariates; mean and SD in the sample table) and cohort. Coarsening or suppressing any of
them would change the published tables, so this package cannot be made k-anonymous on these
quasi-identifiers. Measured on the data in this package:

{k_table}

The smallest group of participants sharing institution, role, years-in-management band and cohort
has {k} participant(s) (k = {k}); the reporting threshold is reports.min_cell = {min_cell}.
Share this package only under a data-use agreement (controlled access). For open publication use
the open data package (results/open_data_package.zip), which is {min_cell}-anonymous on these
quasi-identifiers but does not rebuild the tables.
"""

OPEN_README = """# Open data: competency self-ratings of the DPO program evaluation

responses.csv holds one row per participant, wave and item: participant (a number, not the
analysis key), institution, role, years_band, cohort, wave, domain, item, value (reverse-keyed
items already reversed) and careless (flagged as careless responding).

## Disclosure control

Quasi-identifiers considered: institution, role, years in management (band) and cohort, and the
pattern of questionnaire waves a participant answered (entry, exit with its retrospective
ratings, follow-up), which the rows show. An attacker who knows these facts about a colleague
must find at least {k_target} participants who match them, in the whole table, among the
respondents of any one wave, and among the participants of any one wave pattern.

- Removed: names, e-mail addresses, phone numbers, participant codes and the analysis keys
  (participants are renumbered), submission times and response times, municipality and
  settlement (they would name the institution), the raw (not reverse-keyed) answers.
- Coarsened: years in management in bands ({bands}).
- Wave patterns: a pattern shared by fewer than {k_target} participants is merged into a larger
  one by leaving out the rows of one of its waves; rows left out: {rows_dropped} (of
  {participants_dropped} participants; {records_removed} participants removed entirely).
- Local suppression ("{suppressed}" = suppressed): within each wave pattern, wherever fewer than
  {k_target} participants share institution, role, years band and cohort, values were
  suppressed in this order until every combination has at least {k_target} participants:
  {order}. Values suppressed (participants): {suppression_counts}.

## k achieved (smallest group of participants sharing the quasi-identifiers)

{k_table}

The target was reports.min_cell = {k_target}. These data do not rebuild the published tables
(the models use the exact covariates); the reproduction package does, under controlled access.
"""


# --------------------------------------------------------------------------- disclosure checks


def years_band(years: pd.Series) -> pd.Series:
    """Years in management in the bands of ``YEAR_BANDS`` (missing stays missing)."""
    values = pd.to_numeric(years, errors="coerce")
    edges = [-np.inf, *(upper for upper, _ in YEAR_BANDS)]
    labels = [label for _, label in YEAR_BANDS]
    return pd.cut(values, bins=edges, labels=labels, right=True).astype(object).where(values.notna(), None)


def participants(responses: pd.DataFrame) -> pd.DataFrame:
    """One row per participant with the quasi-identifiers (missing values as "unknown", a value
    of its own: a missing role is as recognisable as any other)."""
    people = responses.drop_duplicates("participant_key")[["participant_key", "institution", "role",
                                                            "years_in_management", "cohort"]].copy()
    people["years_band"] = years_band(people["years_in_management"])
    people = people.drop(columns="years_in_management")
    for column in QUASI_IDENTIFIERS:
        people[column] = people[column].astype(object).where(people[column].notna(), "unknown")
    return people.sort_values("participant_key").reset_index(drop=True)


def group_sizes(people: pd.DataFrame, keys=QUASI_IDENTIFIERS) -> pd.Series:
    """For every participant, how many participants share its quasi-identifiers (a suppressed
    value is a value of its own, the strict reading of k-anonymity)."""
    return people.groupby(list(keys), dropna=False)[list(keys)[0]].transform("size")


def smallest_group(people: pd.DataFrame, keys=QUASI_IDENTIFIERS) -> int:
    """k of k-anonymity: the size of the smallest group sharing the quasi-identifiers."""
    return int(group_sizes(people, keys).min()) if len(people) else 0


def local_suppression(people: pd.DataFrame, k: int,
                      order: tuple[str, ...] = SUPPRESSION_ORDER) -> tuple[pd.DataFrame, dict[str, int]]:
    """Suppress quasi-identifier values until every group has at least ``k`` participants.

    Repeatedly, every participant in a group smaller than ``k`` loses the first value of
    ``order`` it still has; groups only merge, so this ends. Participants left with every value
    suppressed form one group; when that group is still smaller than ``k``, participants of the
    largest groups that can spare them (staying at ``k`` or more) are suppressed completely to
    fill it, and only when no group can spare anyone are its records removed (record
    suppression, as sdcMicro's last resort), counted under ``records_removed``. Returns the
    suppressed table and the number of values suppressed per column. Raises ValueError when
    even a table with every value suppressed has fewer than ``k`` participants."""
    if len(people) < k:
        raise ValueError(f"only {len(people)} participants: no table of them is {k}-anonymous")
    people = people.copy()
    columns = list(order)
    counts = {**dict.fromkeys(order, 0), "records_removed": 0}
    while True:
        small = group_sizes(people) < k
        if not small.any():
            return people, counts
        exhausted = small & (people[columns] == SUPPRESSED).all(axis=1)
        for index in people.index[small & ~exhausted]:
            column = next(c for c in order if people.at[index, c] != SUPPRESSED)
            people.at[index, column] = SUPPRESSED
            counts[column] += 1
        if exhausted.any() and not (small & ~exhausted).any():
            people = _fill_suppressed_group(people, k - int(exhausted.sum()), k, columns, counts)


def _fill_suppressed_group(people: pd.DataFrame, need: int, k: int, columns: list[str],
                           counts: dict[str, int]) -> pd.DataFrame:
    """Suppress ``need`` more participants completely, taken from the largest groups beyond
    their first ``k`` members (by participant key, deterministic); remove the completely
    suppressed records when the other groups cannot spare enough."""
    complete = (people[columns] == SUPPRESSED).all(axis=1)
    donors = people[~complete].assign(_size=group_sizes(people)[~complete])
    donors = donors[donors["_size"] > k].sort_values(["_size", *columns, "participant_key"],
                                                     ascending=[False, *[True] * len(columns), True])
    taken: list = []
    for _, group in donors.groupby(columns, sort=False):
        spare = len(group) - k
        taken.extend(group.index[-min(spare, need - len(taken)):] if spare > 0 else [])
        if len(taken) >= need:
            break
    if len(taken) < need:
        counts["records_removed"] += int(complete.sum())
        return people[~complete]
    for column in columns:
        counts[column] += int((people.loc[taken, column] != SUPPRESSED).sum())
        people.loc[taken, column] = SUPPRESSED
    return people


def k_anonymity_table(people: pd.DataFrame, min_cell: int) -> str:
    """A small Markdown table: participants unique or in groups below ``min_cell`` by
    successively more quasi-identifiers."""
    lines = ["| quasi-identifiers | smallest group | participants in groups < min_cell | unique |",
             "|---|---:|---:|---:|"]
    for n in range(1, len(QUASI_IDENTIFIERS) + 1):
        keys = QUASI_IDENTIFIERS[:n]
        sizes = group_sizes(people, keys)
        lines.append(f"| {', '.join(keys)} | {int(sizes.min())} | {int((sizes < min_cell).sum())} of "
                     f"{len(people)} | {int((sizes == 1).sum())} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- packages


def _files(root: Path, item: str) -> list[Path]:
    path = root / item
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                      and not p.name.endswith(".egg-info") and ".egg-info" not in str(p))
    return [path]


def _zip(entries: dict[str, bytes], folder: str) -> bytes:
    """A zip with fixed timestamps and permissions, entries in sorted order (byte-stable)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[name])
    return buffer.getvalue()


def build_package(root: str | Path, clean_files: list[str], published: list[str], output: str | Path,
                  min_cell: int = 5) -> None:
    """The reproduction package (see the module docstring); REPRODUCE.md reports the k-anonymity
    measured on the packaged responses."""
    root = Path(root)
    entries: dict[str, bytes] = {}
    for item in CODE_ITEMS:
        for path in _files(root, item):
            name = path.relative_to(root).as_posix()
            if name not in EXCLUDED:
                entries[name] = path.read_bytes()
    responses = None
    for path in clean_files:
        entries[Path(path).as_posix()] = Path(path).read_bytes()
        if Path(path).name == "responses.csv":
            responses = read_csv(path)
    if responses is None:
        raise ValueError("the reproduction package needs results/clean/responses.csv")
    people = participants(responses)
    entries["REPRODUCE.md"] = INSTRUCTIONS.format(
        k=smallest_group(people), min_cell=min_cell, k_table=k_anonymity_table(people, min_cell)).encode("utf-8")
    entries["CHECKSUMS.sha256"] = "".join(f"{sha256_file(p)}  {Path(p).as_posix()}\n"
                                          for p in sorted(published)).encode("utf-8")
    write_outputs({output: _zip(entries, "dpo_eval_reproduction")})


def wave_patterns(responses: pd.DataFrame) -> pd.Series:
    """Per participant key, the questionnaire waves answered, in time order ("pre+post")."""
    waves = responses["wave"].map(lambda w: QUESTIONNAIRE_WAVE.get(w, w))
    pairs = pd.DataFrame({"key": responses["participant_key"], "wave": waves}).drop_duplicates()
    pairs = pairs.assign(order=pairs["wave"].map(WAVE_ORDER)).sort_values(["key", "order"], kind="stable")
    return pairs.groupby("key", sort=True)["wave"].agg("+".join)


def merge_rare_patterns(patterns: pd.Series, k: int) -> pd.Series:
    """Wave patterns coarsened until each is shared by at least ``k`` participants (or none).

    The rare pattern of most waves (then the smallest) loses the wave whose removal leads to
    the most common pattern, on a tie its latest wave (its participants' rows of that wave will
    be left out); a one-wave pattern below ``k`` becomes "" (its participants are left out).
    Patterns only shrink, so this ends."""
    patterns = patterns.copy()
    while True:
        sizes = patterns[patterns != ""].value_counts()
        rare = sizes[sizes < k]
        if rare.empty:
            return patterns
        pattern = sorted(rare.index, key=lambda p: (-p.count("+"), rare[p], p))[0]
        waves = pattern.split("+")
        options = ["+".join(w for w in waves if w != drop) for drop in waves] if len(waves) > 1 else [""]
        target = max(options, key=lambda p: (sizes.get(p, 0), options.index(p)))
        patterns[patterns == pattern] = target


def open_responses(responses: pd.DataFrame, k: int) -> tuple[pd.DataFrame, dict[str, int], dict[str, int]]:
    """The item responses with rare wave patterns merged, coarsened and locally suppressed
    quasi-identifiers (within each wave pattern) and renumbered participants; returns the
    table, the suppression counts and the k achieved on each set of quasi-identifiers."""
    original = wave_patterns(responses)
    patterns = merge_rare_patterns(original, k)
    keep = responses["wave"].map(lambda w: QUESTIONNAIRE_WAVE.get(w, w)).to_numpy()
    allowed = responses["participant_key"].map(patterns).fillna("")
    rows = np.array([wave in pattern.split("+") for wave, pattern in zip(keep, allowed)], dtype=bool)
    kept = responses[rows]
    people = participants(kept).assign(pattern=lambda p: p["participant_key"].map(patterns))
    parts, counts = [], {**dict.fromkeys(SUPPRESSION_ORDER, 0), "records_removed": 0}
    for _, group in people.groupby("pattern", sort=True):
        suppressed, part_counts = local_suppression(group.drop(columns="pattern"), k)
        parts.append(suppressed.assign(pattern=group.loc[suppressed.index, "pattern"]))
        counts = {c: counts[c] + part_counts[c] for c in counts}
    people = pd.concat(parts).sort_values("participant_key").reset_index(drop=True)
    counts["records_removed"] += int((patterns == "").sum())
    counts["rows_dropped"] = int(len(responses) - kept["participant_key"].isin(people["participant_key"]).sum())
    counts["participants_dropped"] = int((patterns != original).sum())
    numbers = {key: f"{i:04d}" for i, key in enumerate(people["participant_key"], start=1)}
    context = people.set_index("participant_key")
    table = kept.loc[kept["participant_key"].isin(people["participant_key"]),
                     ["participant_key", "wave", "domain", "item", "value", "careless"]].copy()
    for column in QUASI_IDENTIFIERS:
        table[column] = table["participant_key"].map(context[column])
    table["participant"] = table["participant_key"].map(numbers)
    table = table.sort_values(["participant", "wave", "item"], kind="stable")
    columns = ["participant", *QUASI_IDENTIFIERS, "wave", "domain", "item", "value", "careless"]
    table = table[columns].reset_index(drop=True)
    return table, counts, achieved_k(table)


def achieved_k(table: pd.DataFrame) -> dict[str, int]:
    """The smallest group of participants of an open responses table sharing the
    quasi-identifiers: over all rows, among each wave's respondents, within each wave pattern,
    and on the wave pattern alone (keys as OPEN_DATA.md names them)."""
    keys = list(QUASI_IDENTIFIERS)
    people = table.drop_duplicates("participant")
    pattern = wave_patterns(table.rename(columns={"participant": "participant_key"}))
    people = people.assign(pattern=people["participant"].map(pattern))
    achieved = {", ".join(keys): smallest_group(people, keys)}
    for wave in sorted(table["wave"].unique(), key=lambda w: WAVE_ORDER.get(w, 99)):
        respondents = table[table["wave"] == wave].drop_duplicates("participant")
        achieved[f"{', '.join(keys)}; respondents of wave {wave}"] = smallest_group(respondents, keys)
    achieved[f"{', '.join(keys)}, wave pattern"] = smallest_group(people, [*keys, "pattern"])
    achieved["wave pattern"] = smallest_group(people, ["pattern"])
    return achieved


OPEN_DATA_REPORT = "open_data"


def open_summary(table: pd.DataFrame, counts: dict[str, int], achieved: dict[str, int]) -> pd.DataFrame:
    """The numbers OPEN_DATA.md states, as rows of the release manifest (report "open_data",
    the group: every participant of the package): k on each set of quasi-identifiers, values
    suppressed per column, rows and participants left out."""
    participants = int(table["participant"].nunique())
    values = {"participants": participants, **{f"k:{keys}": k for keys, k in achieved.items()},
              **{f"suppressed:{column}": counts[column] for column in SUPPRESSION_ORDER},
              "records_removed": counts["records_removed"], "rows_left_out": counts["rows_dropped"],
              "participants_changed": counts["participants_dropped"]}
    return pd.DataFrame({"report": OPEN_DATA_REPORT, "item": list(values), "domain": "any", "wave": "any",
                         "institutions": "all", "cohort": "all", "role": "all", "n": participants,
                         "value": [float(v) for v in values.values()]})


def open_readme(summary: pd.DataFrame, k: int) -> str:
    """OPEN_DATA.md, every number taken from ``summary`` (open_summary)."""
    value = dict(zip(summary["item"], summary["value"].astype(int)))
    k_rows = [(item.split(":", 1)[1], number) for item, number in value.items() if item.startswith("k:")]
    k_table = "\n".join(["| quasi-identifiers | k |", "|---|---:|", *(f"| {keys} | {n} |" for keys, n in k_rows)])
    return OPEN_README.format(
        bands=", ".join(label for _, label in YEAR_BANDS), suppressed=SUPPRESSED, k_target=k,
        order=" then ".join(SUPPRESSION_ORDER),
        suppression_counts=", ".join([*(f"{column.replace('_', ' ')} {value['suppressed:' + column]}"
                                        for column in SUPPRESSION_ORDER),
                                      f"records removed {value['records_removed']}"]),
        rows_dropped=value["rows_left_out"], participants_dropped=value["participants_changed"],
        records_removed=value["records_removed"], k_table=k_table)


def open_data(responses: pd.DataFrame, k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The open responses table and its summary (the rows of the release manifest)."""
    table, counts, achieved = open_responses(responses, k)
    return table, open_summary(table, counts, achieved)


def build_open_package(responses_path: str | Path, k: int, output: str | Path) -> None:
    """The open data package (see the module docstring)."""
    table, summary = open_data(read_csv(responses_path), k)
    entries = {"responses.csv": csv_bytes(table), "OPEN_DATA.md": open_readme(summary, k).encode("utf-8")}
    write_outputs({output: _zip(entries, "dpo_eval_open_data")})
