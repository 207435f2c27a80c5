"""The codebook: items, domains, response scales and context fields of the instruments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from dpo_eval.text import fold


@dataclass(frozen=True)
class Item:
    id: str
    domain: str
    scale: str
    reverse: bool
    ru: str
    en: str


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


def load_codebook(path: str | Path) -> Codebook:
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
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
