"""Accessible PDFs: WeasyPrint's PDF/UA-1 output with the document's metadata, and a text
alternative for the formulas.

PDF/UA-1 (ISO 14289-1) is chosen over PDF/A: the reports are read by people (public bodies
that receive them must publish accessible documents), and WeasyPrint's PDF/UA-1 variant writes
the structure tree (headings, paragraphs, lists, tables with header cells, figures with their
alternative text), marks the document as tagged, sets its language and shows its title instead
of the file name. Bookmarks come from the headings. Archiving needs PDF/A-2u on top, which
WeasyPrint cannot combine with PDF/UA in one file; the reproduction package keeps the inputs
from which every report is rebuilt byte for byte instead.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

PDF_VARIANT = "pdf/ua-1"


@dataclass(frozen=True)
class DocumentInfo:
    """What the PDF says about itself: title, language (BCP 47) and authors (organisations)."""
    title: str
    lang: str
    authors: tuple[str, ...]
    subject: str | None = None


def organisations(config: dict, lang: str) -> tuple[str, ...]:
    """The organisations behind the reports, in the order of ``reports.authors`` of the
    configuration (each author's affiliation, once each): the PDF's Author field."""
    names = [author["affiliation"][lang] for author in config.get("reports", {}).get("authors", [])]
    return tuple(dict.fromkeys(names))


def pdf_options(identifier: bytes, font_config=None, tagged: bool = True) -> dict:
    """Keyword arguments of WeasyPrint's ``write_pdf`` for a report: PDF/UA-1 (tagged) and a
    document identifier derived from the content (so that the bytes depend only on it).
    ``tagged=False`` exists for the test that shows the check of the tags can fail."""
    options = {"pdf_identifier": identifier, "font_config": font_config}
    if tagged:
        options["pdf_variant"] = PDF_VARIANT
    return options


def write_pdf(html, info: DocumentInfo | None, identifier: bytes, font_config=None, tagged: bool = True,
              document=None) -> bytes:
    """A WeasyPrint ``HTML`` (or its already rendered ``document``) as tagged PDF bytes with
    ``info`` as its metadata (the title, language and authors a screen reader and a document
    list show); ``info`` None keeps what the HTML says (``<title>``, ``lang``, ``<meta>``)."""
    if document is None:
        document = html.render(font_config=font_config)
    if info is not None:
        document.metadata.title = info.title
        document.metadata.lang = info.lang
        document.metadata.authors = list(info.authors)
        if info.subject:
            document.metadata.description = info.subject
    document.metadata.generator = "dpo_eval"
    options = pdf_options(identifier, tagged=tagged)
    options.pop("font_config")
    with stable_structure_ids():
        return document.write_pdf(**options)


class _SequentialIds:
    """Stands in for ``id()`` in WeasyPrint's tagging: numbers objects in the order they are
    first seen (the boxes' order in the document), instead of their memory addresses."""

    def __init__(self) -> None:
        self.numbers: dict[int, int] = {}
        self.alive: list[object] = []  # keeps every numbered object alive: addresses stay unique

    def __call__(self, obj: object) -> int:
        key = id(obj)
        if key not in self.numbers:
            self.numbers[key] = len(self.numbers) + 1
            self.alive.append(obj)
        return self.numbers[key]


@contextlib.contextmanager
def stable_structure_ids():
    """WeasyPrint 66 names table header cells in the structure tree by ``id(box)``, a memory
    address that differs between processes, so the same report came out with other bytes in
    another process (a Slurm job, a second run). During one ``write_pdf`` the ids are replaced by
    sequence numbers in document order: the same document gives the same bytes."""
    from weasyprint.pdf import tags

    tags.id = _SequentialIds()
    try:
        yield
    finally:
        del tags.id


# --------------------------------------------------------------------------- formulas as text

_GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "zeta": "ζ",
          "eta": "η", "theta": "θ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ",
          "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ",
          "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Sigma": "Σ", "Omega": "Ω", "Phi": "Φ"}
_SYMBOLS = {"sim": " ~ ", "leq": " ≤ ", "le": " ≤ ", "geq": " ≥ ", "ge": " ≥ ", "pm": " ± ", "times": " × ",
            "cdot": " · ", "top": "ᵀ", "infty": "∞", "approx": " ≈ ", "neq": " ≠ ", "ldots": "…", "dots": "…",
            "quad": "  ", "qquad": "  ", ",": " ", ";": " ", ":": " ", " ": " ", "!": "", "{": "{", "}": "}",
            "max": "max", "min": "min", "log": "log", "exp": "exp", "sum": "Σ", "left": "", "right": ""}
_ACCENTS = {"hat": "\u0302", "bar": "\u0304", "tilde": "\u0303", "dot": "\u0307", "overline": "\u0305"}
_SUBSCRIPT = str.maketrans("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ")
_SUPERSCRIPT = str.maketrans("0123456789+-=()nT", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿᵀ")
_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}_^]|[^\\{}_^]")


def _script(text: str, table: dict, marker: str) -> str:
    """A sub- or superscript in Unicode script characters where each has one, else marked."""
    converted = text.translate(table)
    if all(ord(c) != ord(o) or c in " ,ᵀ" for c, o in zip(converted, text)) and text:
        return converted
    return f"{marker}({text})" if len(text) > 1 else f"{marker}{text}"


class _Linear:
    def __init__(self, tex: str) -> None:
        self.tokens = _TOKEN.findall(tex)
        self.position = 0

    def _next(self) -> str | None:
        if self.position >= len(self.tokens):
            return None
        token = self.tokens[self.position]
        self.position += 1
        return token

    def argument(self) -> str:
        """One argument: a braced group or a single token."""
        token = self._next()
        while token == " ":
            token = self._next()
        if token == "{":
            return self.group(closing="}")
        return self.atom(token) if token is not None else ""

    def atom(self, token: str) -> str:
        if token.startswith("\\"):
            name = token[1:]
            if name in _GREEK:
                return _GREEK[name]
            if name in _ACCENTS:
                return self.argument() + _ACCENTS[name]
            if name == "frac":
                numerator, denominator = self.argument(), self.argument()
                wrap = lambda s: s if re.fullmatch(r"[\w\u0300-\u036f₀-₉ᵢⱼ]+", s) else f"({s})"  # noqa: E731
                return f"{wrap(numerator)}/{wrap(denominator)}"
            if name in ("mathrm", "mathit", "mathbf", "text", "operatorname"):
                return self.argument()
            return _SYMBOLS.get(name, name)
        if token == "_":
            return _script(self.argument(), _SUBSCRIPT, "_")
        if token == "^":
            return _script(self.argument(), _SUPERSCRIPT, "^")
        if token == "{":
            return self.group(closing="}")
        return "\u2212" if token == "-" else token

    def group(self, closing: str | None = None) -> str:
        out = []
        while (token := self._next()) is not None and token != closing:
            out.append(self.atom(token))
        return "".join(out)


def formula_text(tex: str) -> str:
    """A mathtext formula as linear Unicode text, its alternative text in the PDF: Greek
    letters, accents as combining marks (β̂), scripts as Unicode sub- and superscripts where they
    exist (σ²ᵤ, y_(ijt) otherwise), fractions as a/b; "\\hat\\beta_3 / \\mathrm{SE}(\\hat\\beta_3)"
    gives "β̂₃ / SE(β̂₃)"."""
    text = _Linear(tex).group()
    return re.sub(r" {2,}", " ", text).strip()
