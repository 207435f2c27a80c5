"""Writing a drafted codebook as commented YAML, and the drafted file lists into
config/config.yaml (between its `# >>> files` and `# <<< files` lines)."""

from __future__ import annotations

from pathlib import Path

import yaml
from dpo_eval.core.study import MODEL_WAVES

ANALYSED_DOMAINS = ("universal", "professional", "subject_methodical", "communication")
START, END = "# >>> files", "# <<< files"


def flow(value) -> str:
    """One YAML flow-style line (a mapping or list on one line, quoted where needed)."""
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**9,
                          sort_keys=False).strip().removesuffix("\n...")


def _comment(note: str) -> str:
    return f"  # {note}" if note else ""


def _scales(draft) -> list[str]:
    lines = ["# Response scales: value -> label in Russian and English, plus spellings seen in real",
             "# exports (compared after folding case, spaces and ё).", "scales:"]
    for name, (definition, note) in draft.scales.items():
        lines.append(f"  {name}:{_comment('GUESS: ' + note)}")
        for value, spec in definition.items():
            lines.append(f"    {value}: {flow(spec)}")
    return lines


def _domains(draft) -> list[str]:
    lines = ["# Domains: the pipeline models the domains universal, professional, subject_methodical and",
             "# communication. TODO: give each candidate domain one of these ids (here, in items and",
             "# waves, and in analysis.domains of config/config.yaml) and its names.",
             "domains:"]
    for domain in draft.domains:
        lines.append(f"  {domain['id']}: {flow({'ru': 'TODO', 'en': 'TODO'})}"
                     f"{_comment('GUESS: ' + domain['note'])}")
    return lines


def _items(draft) -> list[str]:
    lines = ["# Competency items, in the order of the forms. A raw column belongs to an item when its",
             "# folded header contains the folded Russian text. TODO: the English texts.",
             "items:"]
    for item in draft.items:
        entry = {"id": item.id, "domain": item.domain, "scale": draft.item_scale[item.key],
                 "reverse": item.reverse, "ru": item.statement, "en": "TODO"}
        lines.append(f"  - {flow(entry)}{_comment('; '.join(item.notes))}")
    return lines


def _waves(draft) -> list[str]:
    lines = ["# What each competency wave's file must contain besides timestamp, participant_code and",
             "# institution (see config/README.md): context `fields`, items it does not ask",
             "# (`not_asked`), items asked again as retrospective ratings (`retrospective`).",
             "waves:"]
    for wave, spec in draft.waves.items():
        notes = "; ".join([", ".join(spec["files"]), *spec["notes"]])
        body = {key: spec[key] for key in ("fields", "not_asked", "retrospective") if spec[key]}
        if not body:
            lines.append(f"  {wave}: {{}}{_comment(notes)}")
            continue
        lines.append(f"  {wave}:{_comment(notes)}")
        lines += [f"    {key}: {flow(value)}" for key, value in body.items()]
    return lines


def _marker_and_needs(draft) -> list[str]:
    lines = ["# Retrospective (\"then\") items are recognised by this marker in the header."]
    if draft.marker:
        lines.append(f"retrospective_marker: {flow(draft.marker)}"
                     f"  # GUESS: the known marker found in the headers")
    else:
        lines.append('retrospective_marker: "до начала обучения"  # no retrospective items found; unused')
    lines += ["", "# Needs-assessment areas (instrument B), rated on the importance5 scale."]
    if draft.need_areas:
        lines.append(f"need_areas:{_comment(draft.needs_note)}")
        lines += [f"  - {flow({**area, 'en': 'TODO'})}" for area in draft.need_areas]
    else:
        lines.append("need_areas: []  # TODO: no needs-assessment export among the files given")
    return lines


def render_codebook(draft, template: dict, template_text: str, sources: list[str]) -> str:
    """The draft as the commented YAML a researcher edits (loads with load_codebook as it is)."""
    missing_text, _, fields_text = template_text.partition("# Columns that are not items")
    missing_text = missing_text[missing_text.index("# Cell values"):].strip()
    fields_text = ("# Columns that are not items" + fields_text).strip()
    header = ["# Codebook drafted by `dpo-eval draft-codebook` from:",
              *(f"#   {source}" for source in sources),
              "# Lines marked GUESS were inferred from the exports: confirm or correct each one.",
              "# TODO marks what only you know. `dpo-eval check` compares the codebook with every export;",
              "# every key is documented in config/README.md."]
    if draft.ignored:
        header += ["# Columns that look like questions but hold no ratings (not drafted; add them as",
                   "# fields, or delete them from the exports):"]
        header += [f"#   {entry}" for entry in draft.ignored]
    header += [f"# {note}" for note in draft.unknown_labels]
    parts = [header, [missing_text], _scales(draft), _domains(draft), _items(draft),
             [fields_text], _waves(draft), _marker_and_needs(draft)]
    return "\n\n".join("\n".join(part) for part in parts) + "\n"


def analysed_domains(draft) -> tuple[list[str], str]:
    """The domains to model: those rated retrospectively too (the outcome competencies), else
    those asked at both pre and post."""
    retrospective = [d["id"] for d in draft.domains if any(
        d["id"] in spec["retrospective"] for spec in draft.waves.values())]
    if retrospective:
        return retrospective, "GUESS: the domains rated retrospectively too"
    both = [d["id"] for d in draft.domains
            if all(d["id"] not in draft.waves.get(w, {}).get("not_asked", []) for w in MODEL_WAVES)]
    return both, "GUESS: the domains asked at pre and post"


def config_block(draft) -> list[str]:
    registry = str(draft.registry.path) if draft.registry else "data/raw/institutions.csv"
    lines = [f"registry: {flow(registry)}" + ("" if draft.registry else
                                               "  # TODO: no institutions registry among the files given"),
             "waves:"]
    for wave, spec in draft.waves.items():
        lines += [f"  {wave}:{_comment('; '.join(spec['notes']))}", f"    files: {flow(spec['files'])}"]
        if spec["sheet"]:
            lines.append(f"    sheet: {flow(spec['sheet'])}")
    needs = [str(e.path) for e in draft.needs_files]
    sheet = next((e.sheet for e in draft.needs_files if e.sheet), None)
    lines += ["needs:", f"  files: {flow(needs or ['data/raw/needs.csv'])}"
              + ("" if needs else "  # TODO: no needs-assessment export among the files given")]
    if sheet:
        lines.append(f"  sheet: {flow(sheet)}")
    domains, note = analysed_domains(draft)
    covariates = [c for c in ("role", "years_in_management")
                  if any(c in spec["fields"] for spec in draft.waves.values())]
    lines += ["analysis:", f"  domains: {flow(domains)}  # {note}; TODO: their ids from "
              f"{', '.join(ANALYSED_DOMAINS)}", "  min_item_share: 0.8",
              f"  covariates: {flow(covariates)}"]
    return lines


def update_config_block(config_path: Path, draft) -> list[str]:
    """Replace the lines between `# >>> files` (and its comment lines) and `# <<< files` in
    config/config.yaml; without the markers, return the lines for the user to paste. Writes
    config/recipients.csv from the registry when it does not exist yet."""
    block = config_block(draft)
    messages = []
    lines = config_path.read_text(encoding="utf-8").splitlines() if config_path.is_file() else []
    starts = [i for i, line in enumerate(lines) if line.startswith(START)]
    ends = [i for i, line in enumerate(lines) if line.startswith(END)]
    if len(starts) == 1 and len(ends) == 1 and starts[0] < ends[0]:
        first = starts[0] + 1
        while first < ends[0] and lines[first].startswith("#"):
            first += 1
        lines[first:ends[0]] = block
        config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        messages.append(f"wrote the file lists and analysis domains of {config_path}")
    else:
        messages.append(f"{config_path} has no '{START}' ... '{END}' lines; put these into it yourself:")
        messages += [f"    {line}" for line in block]
    recipients = config_path.parent / "recipients.csv"
    if draft.registry is not None and not recipients.exists():
        from dpo_eval.delivery.recipients import recipients_from_registry

        recipients_from_registry(draft.registry.path, recipients)
        messages.append(f"wrote {recipients} from the registry (one report per institution): "
                        "check the addresses")
    return messages
