"""The codebook: items, domains, response scales and context fields of the instruments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dpo_eval.core.config import load_yaml
from dpo_eval.core.errors import ConfigError
from dpo_eval.core.text import fold

# Fields every competency wave's file must have, whatever the codebook's `waves:` section says.
REQUIRED_WAVE_FIELDS = ("timestamp", "participant_code", "institution")


@dataclass(frozen=True)
class Item:
    id: str
    domain: str
    scale: str
    reverse: bool
    ru: str
    en: str


@dataclass(frozen=True)
class WaveContent:
    """What one competency wave's file must contain: the items it asks (in codebook order), the
    items asked again as retrospective "then" ratings, and the context fields it must have."""

    items: tuple[str, ...]
    retrospective: tuple[str, ...]
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Codebook:
    raw: dict
    items: tuple[Item, ...]

    @property
    def scales(self) -> dict:
        return self.raw["scales"]

    @property
    def domains(self) -> dict:
        return self.raw["domains"]

    @property
    def fields(self) -> dict:
        return self.raw["fields"]

    @property
    def need_areas(self) -> list[dict]:
        return self.raw["need_areas"]

    @property
    def missing_codes(self) -> frozenset[str]:
        return frozenset(fold(code) for code in self.raw["missing_codes"])

    @property
    def code_format(self) -> dict | None:
        """The declared form of participant codes (``pattern``, optional ``width``), or None."""
        return self.fields.get("participant_code", {}).get("format")

    @property
    def retrospective_marker(self) -> str:
        return self.raw["retrospective_marker"]

    def items_of(self, domain: str) -> list[Item]:
        return [item for item in self.items if item.domain == domain]

    def scale_points(self, scale: str) -> tuple[int, int]:
        values = [int(v) for v in self.scales[scale]]
        return min(values), max(values)

    def label_lookup(self, scale: str) -> dict[str, int]:
        """Folded label (canonical or variant, also the bare number) -> scale value."""
        lookup: dict[str, int] = {}
        for value, spec in self.scales[scale].items():
            value = int(value)
            for label in [spec["ru"], spec["en"], str(value), *spec.get("variants", [])]:
                lookup[fold(label)] = value
        return lookup

    def field_lookup(self, field: str) -> dict[str, str]:
        """Folded label of a categorical field -> its code (e.g. "директор" -> "director")."""
        lookup: dict[str, str] = {}
        for code, spec in self.fields[field].get("labels", {}).items():
            for label in [spec["ru"], spec["en"], code, *spec.get("variants", [])]:
                lookup[fold(label)] = code
        return lookup

    def label(self, field: str, code: str, language: str) -> str:
        return self.fields[field]["labels"][code][language]

    def _expand(self, entries: list[str]) -> list[str]:
        """Item ids from a list of item ids and domain ids (a domain stands for its items)."""
        chosen = set()
        for entry in entries:
            chosen |= {i.id for i in self.items_of(entry)} if entry in self.domains else {entry}
        return [item.id for item in self.items if item.id in chosen]

    def wave_content(self, wave: str) -> WaveContent:
        """What the file(s) of ``wave`` must contain (see `waves:` in the codebook). Without an
        entry for the wave: every item, no retrospective items, only the required fields."""
        spec = (self.raw.get("waves") or {}).get(wave) or {}
        not_asked = set(self._expand(spec.get("not_asked", [])))
        return WaveContent(
            items=tuple(i.id for i in self.items if i.id not in not_asked),
            retrospective=tuple(self._expand(spec.get("retrospective", []))),
            fields=tuple(dict.fromkeys([*REQUIRED_WAVE_FIELDS, *spec.get("fields", [])])))


_UNITS_NUMBER = re.compile(r"^([+-]?\d+(?:[.,]\d+)?)\s*(\D*?)\.?$")


def parse_number(text: str, units: list[str] | tuple[str, ...] = ()) -> float | None:
    """The number a cell states, or None when it states no single number unambiguously.

    Accepts a decimal comma or point and, after the number, one of the ``units`` words
    (e.g. "5 лет", "2,5 года"); anything else ("пять", "5-6", "с 2019 года") is None."""
    match = _UNITS_NUMBER.match(fold(text))
    if match is None:
        return None
    number, unit = match.groups()
    if unit and unit not in {fold(u).rstrip(".") for u in units}:
        return None
    return float(number.replace(",", "."))


def _format_problems(name: str, code_format: object) -> list[str]:
    """What is wrong with a field's declared code format (``pattern`` regex, optional ``width``)."""
    if not isinstance(code_format, dict) or set(code_format) - {"pattern", "width"}:
        return [f"fields.{name}.format: give {{pattern: <regular expression>, width: <digits>}}"]
    try:
        re.compile(str(code_format.get("pattern", "")))
    except re.error as error:
        return [f"fields.{name}.format.pattern is not a regular expression ({error})"]
    width = code_format.get("width")
    if width is not None and (not isinstance(width, int) or width < 1):
        return [f"fields.{name}.format.width: give a whole number of characters"]
    if not code_format.get("pattern"):
        return [f"fields.{name}.format has no pattern"]
    return []


def _check(raw: dict, path: Path) -> None:
    """The structure the code relies on, with the key to fix named (not a full schema)."""
    problems = []
    for key in ("scales", "domains", "items", "fields", "missing_codes", "retrospective_marker"):
        if key not in raw:
            problems.append(f"top-level key '{key}' is missing")
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems) + ". What to do: compare it with "
                          "config/codebook.yaml and config/README.md")
    item_ids = [entry.get("id") for entry in raw["items"]]
    for index, entry in enumerate(raw["items"]):
        for key in ("id", "domain", "scale", "reverse", "ru", "en"):
            if key not in entry:
                problems.append(f"items[{index}] has no '{key}'")
        if entry.get("domain") not in raw["domains"]:
            problems.append(f"item '{entry.get('id')}': domain '{entry.get('domain')}' is not "
                            "under domains")
        if entry.get("scale") not in raw["scales"]:
            problems.append(f"item '{entry.get('id')}': scale '{entry.get('scale')}' is not "
                            "under scales")
    for wave, spec in (raw.get("waves") or {}).items():
        spec = spec or {}
        for key in spec:
            if key not in ("not_asked", "retrospective", "fields"):
                problems.append(f"waves.{wave}: unknown key '{key}' (allowed: not_asked, "
                                "retrospective, fields)")
        for key in ("not_asked", "retrospective"):
            for entry in spec.get(key, []):
                if entry not in item_ids and entry not in raw["domains"]:
                    problems.append(f"waves.{wave}.{key}: '{entry}' is neither an item id nor "
                                    "a domain")
        for entry in spec.get("fields", []):
            if entry not in raw["fields"]:
                problems.append(f"waves.{wave}.fields: '{entry}' is not under fields")
    for name, spec in raw["fields"].items():
        if "headers" not in spec:
            problems.append(f"fields.{name} has no 'headers'")
        if spec.get("type") not in (None, "number", "integer"):
            problems.append(f"fields.{name}.type: '{spec['type']}' is not number or integer")
        code_format = spec.get("format")
        if code_format is not None:
            problems += _format_problems(name, code_format)
        bounds = spec.get("range")
        if bounds is not None and (len(bounds) != 2 or bounds[0] > bounds[1]):
            problems.append(f"fields.{name}.range: give [lowest, highest]")
    if problems:
        raise ConfigError(f"{path} is not a valid codebook:\n" + "\n".join(
            f"  - {p}" for p in problems) + "\nWhat to do: correct these keys (see "
            "config/README.md, section codebook.yaml)")


def load_codebook(path: str | Path) -> Codebook:
    raw = load_yaml(path, "codebook")
    _check(raw, Path(path))
    items = tuple(
        Item(
            id=entry["id"],
            domain=entry["domain"],
            scale=entry["scale"],
            reverse=bool(entry["reverse"]),
            ru=entry["ru"],
            en=entry["en"],
        )
        for entry in raw["items"]
    )
    return Codebook(raw=raw, items=items)
