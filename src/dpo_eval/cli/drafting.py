"""A codebook drafted from the survey exports themselves (`dpo-eval draft-codebook`).

Each export is read with the pipeline's readers (CSV in UTF-8 or cp1251 with any separator, XLSX;
the sheet with the most rating columns), recognised as a competency wave (it has a participant
code), the needs assessment (ratings without a code) or the institutions registry, and drafted:
items grouped by their matrix question into candidate domains (split further where the answers'
correlations say so), reverse-keyed items, the response scale from the labels found, the
retrospective "then" items, and per wave its `fields`, `not_asked` and `retrospective` lists.
Every inference is marked ``GUESS`` in a comment; what only the researcher knows, ``TODO``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dpo_eval.cli import inference
from dpo_eval.core.errors import InputError, UserError, raise_all
from dpo_eval.core.study import WAVES
from dpo_eval.core.text import fold

TEMPLATE_FIELDS = Path(__file__).with_name("template") / "codebook_fields.yaml"
REGISTRY_MARKERS = {"id", "name", "type"}
# Context fields a competency wave's file may be required to have (`waves.<wave>.fields`): the
# ones ingest reads; the phone number is personal and never read, so never required.
WAVE_CONTEXT_FIELDS = ("started", "role", "years_in_management", "cohort", "full_name", "email")
COVARIATES = ("role", "years_in_management")
# Words of a file name that say which wave it is.
WAVE_WORDS = {"pre": ("pre", "entry", "вход", "baseline", "before"),
              "post": ("post", "exit", "выход", "итог", "after"),
              "followup": ("follow", "отсроч", "delayed", "later")}


@dataclass
class RatingColumn:
    column: str
    prefix: str | None
    statement: str
    retrospective: str | None   # the marker phrase found, for "then" columns


@dataclass
class Export:
    path: Path
    sheet: str | None
    frame: pd.DataFrame
    fields: dict[str, str]
    ratings: list[RatingColumn]
    ignored: list[str]
    kind: str = ""
    wave: str | None = None
    wave_note: str = ""


@dataclass
class DraftItem:
    key: str                      # folded statement
    statement: str
    prefix: str | None
    id: str = ""
    domain: str = ""
    reverse: bool = False
    notes: list[str] = field(default_factory=list)


def template_fields() -> dict:
    import yaml

    return yaml.safe_load(TEMPLATE_FIELDS.read_text(encoding="utf-8"))


def _matches(folded: str, headers: list[str]) -> bool:
    return any(folded == fold(h) or folded.startswith(fold(h)) for h in headers)


def _sheet_names(path: Path) -> list[str | None]:
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        return [None]
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True)
    except Exception:  # read_export reports the damaged file in the pipeline's words
        return [None]
    try:
        return list(workbook.sheetnames)
    finally:
        workbook.close()


def _analyse(path: Path, sheet: str | None, fields: dict, missing: frozenset[str]) -> Export:
    from dpo_eval.core.readers import read_export

    frame = read_export(path, sheet).frame
    found, ratings, ignored = {}, [], []
    for column in frame.columns:
        folded = fold(column)
        name = next((n for n, spec in fields.items() if _matches(folded, spec["headers"])), None)
        if name is not None and name not in found:
            found[name] = column
        elif inference.is_rating_column(frame[column], missing):
            prefix, statement = inference.split_header(column)
            ratings.append(RatingColumn(column, prefix, statement, inference.retrospective_marker(column)))
        else:
            ignored.append(column)
    return Export(path, sheet, frame, found, ratings, ignored)


def read_exports(paths: list[Path], fields: dict, missing: frozenset[str]) -> list[Export]:
    """Every export, read as the pipeline reads it; a workbook's sheet with the most rating
    columns. Problems of all files are raised together."""
    exports, problems = [], []
    for path in paths:
        candidates, errors = [], []
        for sheet in _sheet_names(path):   # an empty or odd extra sheet is passed over
            try:
                candidates.append(_analyse(path, sheet, fields, missing))
            except InputError as error:
                errors.append(error)
        if not candidates:
            problems.append(errors[0])
            continue
        best = max(candidates, key=lambda e: (len(e.ratings), len(e.fields)))
        if len(candidates) == 1:
            best.sheet = None
        exports.append(best)
    raise_all(problems)
    for export in exports:
        if REGISTRY_MARKERS <= set(export.frame.columns):
            export.kind = "registry"
        elif export.ratings and "participant_code" in export.fields:
            export.kind = "wave"
        elif export.ratings:
            export.kind = "needs"
        else:
            export.kind = "other"
    return exports


def _timestamp_order(export: Export) -> pd.Timestamp:
    column = export.fields.get("timestamp")
    if column is None:
        return pd.Timestamp.max
    times = pd.to_datetime(export.frame[column], errors="coerce", dayfirst=True, format="mixed")
    return times.median() if times.notna().any() else pd.Timestamp.max


def assign_waves(exports: list[Export], configured: dict[str, str]) -> None:
    """Which wave each competency file is: as config/config.yaml lists it, else by a word of its
    name (pre, entry, вход / post, exit, выход / follow, отсроч), else by the time order of its
    submissions."""
    waves = [e for e in exports if e.kind == "wave"]
    for export in waves:
        if str(export.path) in configured:
            export.wave, export.wave_note = configured[str(export.path)], "as config/config.yaml lists it"
            continue
        name = fold(export.path.stem)
        words = [w for w, keys in WAVE_WORDS.items() if any(re.search(rf"(^|[^a-zа-я]){k}", name)
                                                            for k in keys)]
        if len(words) == 1:
            export.wave, export.wave_note = words[0], f"GUESS: from the file name ('{export.path.name}')"
    free = [w for w in WAVES if w not in {e.wave for e in waves}]
    for export in sorted((e for e in waves if e.wave is None), key=_timestamp_order):
        if not free:
            raise UserError(f"{export.path}: cannot tell which wave this file is (pre, post and "
                            "followup are taken). What to do: list the files under waves in "
                            "config/config.yaml, then run draft-codebook again")
        export.wave = free.pop(0)
        export.wave_note = "GUESS: by the time order of the submissions"


def _ordered(exports: list[Export]) -> list[Export]:
    return sorted(exports, key=lambda e: WAVES.index(e.wave))


def collect_items(waves: list[Export]) -> tuple[list[DraftItem], dict, dict]:
    """Items in the order first seen (pre first), and per wave the items asked and the items
    asked as retrospective ratings (folded statements)."""
    items: dict[str, DraftItem] = {}
    asked: dict[str, set[str]] = {}
    retro: dict[str, set[str]] = {}
    for export in _ordered(waves):
        for rating in export.ratings:
            key = fold(rating.statement)
            target = retro if rating.retrospective else asked
            target.setdefault(export.wave, set()).add(key)
            if rating.retrospective:
                continue
            item = items.setdefault(key, DraftItem(key, rating.statement, rating.prefix))
            if item.prefix is None and rating.prefix is not None:
                item.prefix = rating.prefix
    for export in waves:   # a statement asked only retrospectively is an item too
        for rating in export.ratings:
            items.setdefault(fold(rating.statement), DraftItem(fold(rating.statement),
                                                               rating.statement, rating.prefix))
    return list(items.values()), asked, retro


def _values(exports: list[Export], keys: set[str]) -> pd.Series:
    cells = [e.frame[r.column] for e in exports for r in e.ratings if fold(r.statement) in keys]
    return pd.concat(cells, ignore_index=True) if cells else pd.Series(dtype=str)


def _numeric(export: Export, guess: inference.ScaleGuess, keys: list[str]) -> pd.DataFrame:
    points = set(guess.definition)
    columns = {}
    for rating in export.ratings:
        key = fold(rating.statement)
        if key in keys and not rating.retrospective:
            folded = export.frame[rating.column].map(fold)
            numbers = pd.to_numeric(folded, errors="coerce")
            value = folded.map(guess.lookup).astype(float).fillna(numbers.where(numbers.isin(points)))
            columns[key] = value
    return pd.DataFrame(columns)


@dataclass
class Draft:
    scales: dict            # name -> (definition, note)
    domains: list[dict]     # id, prefix, note
    items: list[DraftItem]
    item_scale: dict        # item key -> scale name
    waves: dict             # wave -> {files, sheet, fields, not_asked, retrospective, notes}
    marker: str | None
    need_areas: list[dict]
    needs_note: str
    registry: Export | None
    needs_files: list[Export]
    ignored: list[str]
    unknown_labels: list[str] = field(default_factory=list)


def draft_domains(items: list[DraftItem], waves: list[Export], missing: frozenset[str]):
    """Scales per matrix question, then candidate domains and reverse keys inside each."""
    scales, item_scale, domains = {}, {}, []
    groups: dict[str | None, list[DraftItem]] = {}
    for item in items:
        groups.setdefault(item.prefix, []).append(item)
    for prefix, members in groups.items():
        keys = [m.key for m in members]
        guess = inference.infer_scale(_values(waves, set(keys)), missing)
        scales.setdefault(guess.name, (guess.definition, guess.note))
        for member in members:
            item_scale[member.key] = guess.name
        frames = [_numeric(e, guess, keys) for e in waves]
        corr, n = inference.pooled_correlation(frames, keys)
        suggestion = inference.suggest_domains(corr, n)
        where = f"the matrix question '{prefix}'" if prefix else "columns without a matrix question"
        for part, positions in enumerate(suggestion.groups, start=1):
            domain = f"domain{len(domains) + 1}"
            split = (f"part {part} of {len(suggestion.groups)} of {where}, by the correlations of "
                     "the answers (parallel analysis, varimax)" if len(suggestion.groups) > 1
                     else f"the items of {where}")
            domains.append({"id": domain, "prefix": prefix, "note": split})
            for position in positions:
                member = members[position]
                member.domain, member.reverse = domain, suggestion.reverse[position]
                if member.reverse:
                    member.notes.append(
                        "GUESS reverse-keyed: correlates negatively with the other items of its "
                        f"domain (mean r = {suggestion.item_rest[position]:.2f})")
    ordered = sorted(items, key=lambda i: (int(i.domain.removeprefix("domain")), items.index(i)))
    for number, item in enumerate(ordered, start=1):
        item.id = f"item{number:02d}"
    return scales, item_scale, domains, ordered


def _compress(keys: set[str], items: list[DraftItem], domains: list[dict]) -> list[str]:
    """Item ids, with whole domains written as the domain id."""
    entries = []
    for domain in domains:
        members = [i for i in items if i.domain == domain["id"]]
        chosen = [i for i in members if i.key in keys]
        if chosen and len(chosen) == len(members):
            entries.append(domain["id"])
        else:
            entries += [i.id for i in chosen]
    return entries


def wave_contents(waves: list[Export], items, domains, asked, retro, field_order) -> dict:
    contents = {}
    for wave in WAVES:
        files = [e for e in waves if e.wave == wave]
        if not files:
            continue
        found = set().union(*(e.fields for e in files))
        all_keys = {i.key for i in items}
        contents[wave] = {
            "files": [str(e.path) for e in files],
            "sheet": next((e.sheet for e in files if e.sheet), None),
            "fields": [f for f in field_order if f in WAVE_CONTEXT_FIELDS and f in found],
            "not_asked": _compress(all_keys - asked.get(wave, set()), items, domains),
            "retrospective": _compress(retro.get(wave, set()), items, domains),
            "notes": sorted({e.wave_note for e in files}),
        }
    return contents


def draft_needs(needs: list[Export], missing: frozenset[str]) -> tuple[list[dict], str]:
    statements = list(dict.fromkeys(r.statement for e in needs for r in e.ratings))
    if not statements:
        return [], ""
    guess = inference.infer_scale(_values(needs, {fold(s) for s in statements}), missing)
    note = (f"GUESS: the need areas of {', '.join(str(e.path) for e in needs)}; scale: {guess.note}")
    if guess.name != "importance5":
        note += ("; the needs analysis reads the scale 'importance5': rate the areas on it or "
                 "rename this scale")
    return [{"id": f"need{n:02d}", "ru": s} for n, s in enumerate(statements, start=1)], note


def unknown_labels(exports: list[Export], fields: dict, missing: frozenset[str]) -> list[str]:
    """Per categorical field (role, cohort, stakeholder, formats), the values of the exports
    that are none of its labels: the labels of the template are the demo study's, a new study
    names its own cohorts."""
    notes = []
    for name, spec in fields.items():
        if "labels" not in spec:
            continue
        known = {fold(label) for code, label_spec in spec["labels"].items()
                 for label in [label_spec["ru"], label_spec["en"], code, *label_spec.get("variants", [])]}
        found: dict[str, str] = {}
        for export in exports:
            column = export.fields.get(name)
            for cell in export.frame[column] if column else []:
                for part in str(cell).split(",") if spec.get("multiple") else [cell]:
                    folded = fold(part)
                    if folded and folded not in missing and folded not in known:
                        found.setdefault(folded, " ".join(str(part).split()))
        if found:
            shown = ", ".join(repr(v) for v in list(found.values())[:8])
            notes.append(f"fields.{name}: {len(found)} value(s) found that are not among its labels: "
                         f"{shown}{' ...' if len(found) > 8 else ''}; TODO: add them as labels "
                         "(or variants of a label)")
    return notes


def build_draft(paths: list[Path], configured: dict[str, str]) -> tuple[Draft, dict]:
    template = template_fields()
    missing = frozenset(fold(code) for code in template["missing_codes"])
    exports = read_exports(paths, template["fields"], missing)
    waves = [e for e in exports if e.kind == "wave"]
    if not waves:
        raise UserError("no competency questionnaire among the exports (a file with a "
                        "participant code column and rating columns). What to do: give the "
                        "exports of the waves, e.g. dpo-eval draft-codebook data/raw/*")
    assign_waves(exports, configured)
    items, asked, retro = collect_items(waves)
    scales, item_scale, domains, items = draft_domains(items, waves, missing)
    needs = [e for e in exports if e.kind == "needs"]
    need_areas, needs_note = draft_needs(needs, missing)
    if need_areas:
        guess = inference.infer_scale(_values(needs, {fold(a["ru"]) for a in need_areas}), missing)
        scales.setdefault(guess.name, (guess.definition, guess.note))
    markers = {r.retrospective for e in waves for r in e.ratings if r.retrospective}
    ignored = [f"{e.path}: '{c}'" for e in [*waves, *needs] for c in e.ignored
               if inference.split_header(c)[0] or len(fold(c)) >= 30 or "?" in c]
    draft = Draft(scales, domains, items, item_scale,
                  wave_contents(waves, items, domains, asked, retro, list(template["fields"])),
                  sorted(markers)[0] if markers else None, need_areas, needs_note,
                  next((e for e in exports if e.kind == "registry"), None), needs, ignored,
                  unknown_labels([*waves, *needs], template["fields"], missing))
    return draft, template
