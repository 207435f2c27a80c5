"""Formulas as text: the TeX subset of the reports' formulas (reports/i18n/*.yaml ``methods``,
reports/templates/power.yaml ``formula``) set as HTML in the reports' own fonts, so that a
formula can be found, copied and read aloud, and as linear Unicode text, its alternative text.

One parser serves both (``_Parser``): Greek letters and operators as Unicode characters
(β, σ, ≤, ±, ᵀ), accents as combining marks (β̂, M̄), scripts as ``<sub>``/``<sup>`` in HTML and
as Unicode sub- and superscripts in the linear text where every character has one (σ²ᵤ, else
y_(ijt)), fractions on one line with a solidus (ISO 80000-2, 2-13: a/b, with parentheses around a
compound numerator or denominator), single Latin letters in italic as variables (ISO 80000-2),
names and descriptive subscripts in ``\\mathrm``/``\\text`` upright (``d_{\\mathrm{ppc2}}``).
A top-level ``\\qquad`` separates the parts of a display line, which may wrap between parts
but never inside one.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

_GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "zeta": "ζ",
          "eta": "η", "theta": "θ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ",
          "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ",
          "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Sigma": "Σ", "Omega": "Ω", "Phi": "Φ"}
_SYMBOLS = {"sim": " ~ ", "leq": " ≤ ", "le": " ≤ ", "geq": " ≥ ", "ge": " ≥ ", "pm": " ± ", "times": " × ",
            "cdot": " · ", "top": "T", "infty": "∞", "approx": " ≈ ", "neq": " ≠ ", "ldots": "…", "dots": "…",
            "quad": "  ", ",": " ", ";": " ", ":": " ", " ": " ", "!": "", "{": "{", "}": "}",
            "max": "max", "min": "min", "log": "log", "exp": "exp", "sum": "Σ", "left": "", "right": ""}
_ACCENTS = {"hat": "\u0302", "bar": "\u0304", "tilde": "\u0303", "dot": "\u0307", "overline": "\u0305"}
_UPRIGHT = ("mathrm", "text", "operatorname")
_SUBSCRIPT = str.maketrans("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ")
_SUPERSCRIPT = str.maketrans("0123456789+-=()nT", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿᵀ")
_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}_^]|[^\\{}_^]")
PART_SEPARATOR = "\\qquad"


@dataclass(frozen=True)
class Piece:
    """A formula fragment in both forms: linear Unicode ``text`` and ``markup`` (HTML)."""
    text: str
    markup: str

    def __add__(self, other: "Piece") -> "Piece":
        return Piece(self.text + other.text, self.markup + other.markup)


EMPTY = Piece("", "")


def _plain(text: str) -> Piece:
    return Piece(text, html.escape(text, quote=False))


def _script(piece: Piece, table: dict, marker: str, tag: str) -> Piece:
    """A sub- or superscript: ``<sub>``/``<sup>`` in HTML; in the text the Unicode script
    characters where each character has one, else marked ("_(ijt)")."""
    converted = piece.text.translate(table)
    if piece.text and all(c != o or c in " ,ᵀ" for c, o in zip(converted, piece.text)):
        text = converted
    else:
        text = f"{marker}({piece.text})" if len(piece.text) > 1 else f"{marker}{piece.text}"
    return Piece(text, f"<{tag}>{piece.markup}</{tag}>")


def _simple(text: str) -> bool:
    return bool(re.fullmatch(r"[\w\u0300-\u036f₀-₉ᵢⱼ]+", text))


class _Parser:
    def __init__(self, tex: str) -> None:
        self.tokens = _TOKEN.findall(tex)
        self.position = 0
        self.upright = 0

    def _next(self) -> str | None:
        if self.position >= len(self.tokens):
            return None
        token = self.tokens[self.position]
        self.position += 1
        return token

    def argument(self) -> Piece:
        """One argument: a braced group or a single token."""
        token = self._next()
        while token == " ":
            token = self._next()
        if token == "{":
            return self.group(closing="}")
        return self.atom(token) if token is not None else EMPTY

    def _command(self, name: str) -> Piece:
        if name in _GREEK:
            return _plain(_GREEK[name])
        if name in _ACCENTS:
            # The mark joins its letter inside the letter's element: split from it, it would be
            # shaped on its own (a mark over a dotted circle).
            base, mark = self.argument(), _ACCENTS[name]
            inside = base.markup[:-4] + mark + "</i>" if base.markup.endswith("</i>") else base.markup + mark
            return Piece(base.text + mark, inside)
        if name == "frac":
            numerator, denominator = self.argument(), self.argument()
            wrap = lambda p: p if _simple(p.text) else _plain("(") + p + _plain(")")  # noqa: E731
            return wrap(numerator) + _plain("/") + wrap(denominator)
        if name in _UPRIGHT:
            self.upright += 1
            try:
                return self.argument()
            finally:
                self.upright -= 1
        if name in ("mathit", "mathbf"):
            return self.argument()
        if name == "qquad":
            return _plain("  ")
        return _plain(_SYMBOLS.get(name, name))

    def atom(self, token: str) -> Piece:
        if token.startswith("\\"):
            return self._command(token[1:])
        if token == "_":
            return _script(self.argument(), _SUBSCRIPT, "_", "sub")
        if token == "^":
            return _script(self.argument(), _SUPERSCRIPT, "^", "sup")
        if token == "{":
            return self.group(closing="}")
        if token == "-":
            return _plain("\u2212")
        if re.fullmatch(r"[A-Za-z]", token) and not self.upright:
            return Piece(token, f"<i>{token}</i>")
        return _plain(token)

    def group(self, closing: str | None = None) -> Piece:
        out = EMPTY
        while (token := self._next()) is not None and token != closing:
            out = out + self.atom(token)
        return out


def _tidy(text: str) -> str:
    return re.sub(r" {2,}", " ", text).strip()


def formula_text(tex: str) -> str:
    """A formula as linear Unicode text, its alternative text in the PDF:
    "t = \\hat\\beta_3 / \\mathrm{SE}(\\hat\\beta_3)" gives "t = β̂₃ / SE(β̂₃)"."""
    return _tidy(_Parser(tex).group().text)


def formula_parts(tex: str) -> list[str]:
    """A formula's parts (split at top-level ``\\qquad``) as HTML, spaces collapsed."""
    parts = []
    for part in tex.split(PART_SEPARATOR):
        markup = _Parser(part).group().markup.replace("</i><i>", "")
        parts.append(re.sub(r" {2,}", " ", markup).strip())
    return [part for part in parts if part]


def formula_html(tex: str) -> str:
    """A formula as inline HTML in the report's fonts: a ``span`` with ``role="math"`` (tagged
    as a PDF Formula with the linear text as its alternative, ``accessibility.role_tags``),
    its parts kept whole (class ``part``)."""
    parts = "".join(f'<span class="part">{part}</span>' for part in formula_parts(tex))
    alt = html.escape(formula_text(tex), quote=True)
    return f'<span class="math" role="math" aria-label="{alt}">{parts}</span>'
