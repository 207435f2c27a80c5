"""Typography of numbers and counted nouns in the reports' languages, by rule.

One set of locale settings serves the tables, the running text and the tick labels of the
figures (``tick_formatter``), so that a figure never shows "0.5" next to a table's "0,5":

- decimal separator: comma in Russian (GOST 8.417 and common Russian typesetting), point in English;
- negative numbers with the typographic minus U+2212, not the ASCII hyphen-minus;
- thousands grouped by a narrow no-break space (U+202F) in Russian from five digits on
  (Мильчин, «Справочник издателя и автора»), by a comma in English from four digits on;
- a no-break space (U+00A0) between a number and its unit, so that a line never breaks there;
- nouns after numerals agree by the CLDR plural rules of Babel (``babel.Locale.plural_form``):
  "1 участник, 2 участника, 5 участников, 11 участников, 21 участник".
"""

from __future__ import annotations

import math
from decimal import Decimal
from dataclasses import dataclass
from functools import lru_cache

MINUS = "\u2212"
NBSP = "\u00a0"
NARROW_NBSP = "\u202f"


@dataclass(frozen=True)
class NumberStyle:
    decimal: str
    group: str
    group_from_digits: int  # integer parts of at least this many digits are grouped


STYLES = {
    "ru": NumberStyle(decimal=",", group=NARROW_NBSP, group_from_digits=5),
    "en": NumberStyle(decimal=".", group=",", group_from_digits=4),
}


def _group(integer_digits: str, style: NumberStyle) -> str:
    if len(integer_digits) < style.group_from_digits:
        return integer_digits
    groups = []
    while integer_digits:
        groups.insert(0, integer_digits[-3:])
        integer_digits = integer_digits[:-3]
    return style.group.join(groups)


def format_number(value: float, lang: str, digits: int = 2) -> str:
    """A number as the locale writes it, rounded to ``digits`` decimals, with U+2212 for a
    negative value ("−0,25"); a value that rounds to zero is written without a sign."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError("a missing number reached the report; check the analysis tables")
    style = STYLES[lang]
    text = f"{abs(float(value)):.{digits}f}"
    integer, _, fraction = text.partition(".")
    negative = float(value) < 0 and float(text) != 0
    body = _group(integer, style) + (style.decimal + fraction if fraction else "")
    return (MINUS if negative else "") + body


def format_count(value: int, lang: str) -> str:
    """An integer count with the locale's thousands grouping ("12 345" / "12,345")."""
    return format_number(int(value), lang, 0)


def with_unit(number: str, unit: str) -> str:
    """A number and its unit joined by a no-break space ("0,50 балла", "25 %")."""
    return f"{number}{NBSP}{unit}"


@lru_cache(maxsize=None)
def _locale(lang: str):
    from babel import Locale

    return Locale.parse(lang)


def plural_category(count, lang: str) -> str:
    """The CLDR plural category of a count ("one", "few", "many", "other"). Pass a decimal
    quantity as ``decimal.Decimal`` with its printed digits ("0.50"): CLDR decides by them
    (Russian "0,50 балла", "1,00 балла" but "1 балл")."""
    if isinstance(count, Decimal):
        return _locale(lang).plural_form(abs(count))
    return _locale(lang).plural_form(abs(int(count)))


def plural(count: int, forms: dict, lang: str) -> str:
    """The form of a noun that agrees with ``count``. ``forms`` maps CLDR categories to word
    forms; a category a language does not use may be left out where "other" covers it."""
    category = plural_category(count, lang)
    if category in forms:
        return forms[category]
    if "other" in forms:
        return forms["other"]
    raise KeyError(f"no plural form {category!r} (for {count}) among {sorted(forms)}")


def counted(count: int, forms: dict, lang: str) -> str:
    """A numeral and the noun that agrees with it: "251 участник", "34 участника"."""
    return f"{format_count(count, lang)} {plural(count, forms, lang)}"


def tick_formatter(lang: str, digits: int | None = None, percent: bool = False):
    """A matplotlib tick formatter writing tick values as the tables do. ``digits`` None
    chooses the fewest decimals that tell the ticks apart (like matplotlib's default)."""
    from matplotlib.ticker import FuncFormatter

    def label(value: float, _position) -> str:
        if percent:
            return format_number(abs(value) * 100, lang, 0) + (NARROW_NBSP if lang == "ru" else "") + "%"
        if digits is not None:
            return format_number(value, lang, digits)
        for decimals in range(0, 4):
            if abs(round(value, decimals) - value) < 1e-9:
                return format_number(value, lang, decimals)
        return format_number(value, lang, 3)

    return FuncFormatter(label)


# --------------------------------------------------------------------------- typesetting pass
#
# Rules of Russian typesetting (Мильчин, Чельцова, «Справочник издателя и автора», 2014, ch. 5;
# ГОСТ 8.417 for units), applied to every generated text by ``typeset`` (one text) and
# ``typeset_html`` (a whole report, in document order). Each rule is a regular expression with its
# replacement; a line may never break at a no-break space (U+00A0) or a narrow one (U+202F),
# which WeasyPrint honours (Unicode line breaking class GL).

import html as _html  # noqa: E402
from dpo_eval.reporting.formulas import formula_html  # noqa: E402
import re  # noqa: E402

EN_DASH = "\u2013"
EM_DASH = "\u2014"
_SPACE = r"[ \t\r\n]+"  # a breakable space (not the no-break ones)

# One-letter prepositions, conjunctions and particles, and the two- and three-letter
# prepositions and conjunctions: a line never ends with one of them.
SHORT_WORDS = {
    "ru": ("а", "в", "и", "к", "о", "с", "у", "я",
           "во", "до", "за", "из", "ко", "на", "не", "ни", "но", "об", "от", "по", "со", "да",
           "без", "для", "над", "под", "при", "про", "что", "как"),
    "en": ("a", "an", "I"),
}
# Words a number does not count: the space between them and a number before them may break.
NOT_COUNTED = {"ru": SHORT_WORDS["ru"] + ("или", "либо", "против"),
               "en": SHORT_WORDS["en"] + ("and", "or", "to", "of", "in", "on", "at", "for", "with", "from", "than",
                                          "vs", "versus", "is", "are", "was", "were")}
# Particles bound to the word before them ("так же", "если бы").
ENCLITICS = {"ru": ("бы", "б", "же", "ж", "ли", "ль"), "en": ()}
# Words that stand before a number and must stay on its line ("Таблица 3", "Figure 2").
NUMBERED = {
    "ru": ("Таблица", "таблица", "Таблице", "таблице", "таблицы", "таблицах", "табл.", "Рисунок",
           "рисунок", "рисунке", "рисунка", "рис.", "Приложение", "приложение", "приложении",
           "с.", "№", "§", "волна", "шаг", "группа"),
    "en": ("Table", "table", "Tables", "tables", "Figure", "figure", "Figures", "figures",
           "Appendix", "appendix", "p.", "No.", "§", "step", "wave", "group"),
}
# Abbreviations with a full stop that stay with the word after them ("г. Хабаровск", "им. Лазо").
DOTTED = {"ru": ("г", "гг", "им", "с", "п", "пос", "д", "ул", "см", "ср", "т", "е", "др", "пр"),
          "en": ("No", "St", "Dr", "e.g", "i.e", "cf", "vs")}
QUOTES = {"ru": (("«", "»"), ("„", "“")), "en": (("\u201c", "\u201d"), ("\u2018", "\u2019"))}
PERCENT = {"ru": NARROW_NBSP + "%", "en": "%"}


def percent(number: str, lang: str) -> str:
    """The one percent rule: "46 %" (narrow no-break space, ГОСТ 8.417) in Russian, "46%" in English."""
    return number + PERCENT[lang]


def _words(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _rules(lang: str) -> list[tuple[str, re.Pattern, str]]:
    """(name, pattern, replacement) in the order they apply; table-driven unit tests name them."""
    number = r"[\u2212\-+]?\d+(?:[.,]\d+)?"
    rules = [
        # "1-5", "0,20-0,45": a range takes the en dash; ISO dates and phone numbers are left alone.
        ("range_dash", re.compile(rf"(?<![\w.,\-\u2013])(\d+(?:[.,]\d+)?)-(\d+(?:[.,]\d+)?)(?![\w\-])"),
         rf"\1{EN_DASH}\2"),
        ("minus", re.compile(r"(?<![\w)\]])-(?=\d)"), MINUS),
        ("percent", re.compile(r"(\d)[ \u00a0\u202f]*%"), r"\1" + PERCENT[lang]),
        # "p = 0,023", "n = 250", "p < 0,001", "0,5 ± 0,1": the relation never breaks.
        ("relation", re.compile(rf"(?<=\S){_SPACE}([=<>≤≥≈±×]){_SPACE}(?={number})"), f"{NBSP}\\1{NBSP}"),
        # "[−0,37; −0,20]", "(0,07; 0,93)": an interval never breaks.
        ("interval", re.compile(rf"(?<=\d)([;,]){_SPACE}(?=[\u2212\-]?\d[\d.,]*[\])])"), f"\\1{NBSP}"),
        ("interval_open", re.compile(rf"(?<=\d);{_SPACE}(?=[\u2212\-]?\d)"), f";{NBSP}"),
        # "г. Хабаровск", "им. Лазо", "т. е. так".
        ("dotted", re.compile(rf"(?<![\w.])({_words(DOTTED[lang])})\.{_SPACE}(?=\S)"), f"\\1.{NBSP}"),
        # "Таблица 3", "Figure 2", "№ 5".
        ("numbered", re.compile(rf"(?<![\w.])({_words(NUMBERED[lang])}){_SPACE}(?=\d)"), f"\\1{NBSP}"),
        # "0,33 балла", "25 участников", "5 лет": a number stays with the word it counts.
        # (not before a conjunction or preposition: "0,023 и 0,041" may break after the number).
        ("number_unit", re.compile(rf"(?<=\d){_SPACE}(?=[^\W\d_])(?!(?:{_words(NOT_COUNTED[lang])})(?!\w))",
                                   re.IGNORECASE), NBSP),
        # "ХК ИРО", "KhK IRO": the words of an abbreviation stay on one line.
        ("abbreviation", re.compile(rf"(?<![\w\-])([A-ZА-ЯЁ][A-Za-zА-Яа-яЁё]*[A-ZА-ЯЁ]){_SPACE}(?=[A-ZА-ЯЁ]{{2,}}(?![a-zа-яё]))"),
         f"\\1{NBSP}"),
        # "текст — текст": the dash never begins a line.
        ("dash", re.compile(rf"(?<=\S){_SPACE}{EM_DASH}"), f"{NBSP}{EM_DASH}"),
    ]
    if SHORT_WORDS[lang]:
        # Matching resumes after the consumed space, so a chain ("и в школе") is bound word by word.
        rules.append(("short_word", re.compile(rf"(?<![\w\-.])({_words(SHORT_WORDS[lang])}){_SPACE}", re.IGNORECASE),
                      f"\\1{NBSP}"))
    if ENCLITICS[lang]:
        rules.append(("enclitic", re.compile(rf"(?<=\w){_SPACE}({_words(ENCLITICS[lang])})(?!\w)"), f"{NBSP}\\1"))
    return rules


@lru_cache(maxsize=None)
def typesetting_rules(lang: str) -> tuple[tuple[str, re.Pattern, str], ...]:
    return tuple(_rules(lang))


def quotes(text: str, lang: str, depth: int = 0) -> tuple[str, int]:
    """Quotation marks of the language, nested: «…„…“…» in Russian, “…‘…’…” in English.
    Straight quotes open after a space, a bracket or the start, and close otherwise. Returns
    the text and the nesting depth at its end (a quotation may span several text nodes)."""
    pairs = QUOTES[lang]
    openers = {"«", "„", "\u201c", "\u2018"}
    closers = {"»", "\u201d", "\u2019"} | ({"“"} if lang == "ru" else set())
    out = []
    for i, char in enumerate(text):
        previous = text[i - 1] if i else " "
        if char == '"':
            opening = previous.isspace() or previous in "([{«„\u201c\u2014\u2013/" or i == 0 and depth == 0
            char = "\u201c" if opening else "\u201d"
        if char in openers and not (lang == "ru" and char == "\u201c" and depth > 0 and not previous.isspace()):
            out.append(pairs[min(depth, 1)][0])
            depth += 1
        elif char in closers or (char == "\u201c" and depth > 0):
            depth = max(depth - 1, 0)
            out.append(pairs[min(depth, 1)][1])
        else:
            out.append(char)
    return "".join(out), depth


def _apply_rules(text: str, lang: str) -> str:
    for _name, pattern, replacement in typesetting_rules(lang):
        text = pattern.sub(replacement, text)
    return text


def typeset(text: str, lang: str) -> str:
    """One text set by the rules of its language (``typesetting_rules``) and its quotation marks.
    A line break of the text (a figure's label) stays one: the rules apply line by line."""
    lines = [_apply_rules(line, lang) for line in text.split("\n")]
    return quotes("\n".join(lines), lang)[0]


class FirstUse:
    """Abbreviations expanded where a text first uses them: "ДПО (дополнительное профессиональное
    образование)" in Russian (the abbreviation keeps its grammatical case), "additional professional
    education (DPO)" in English. ``terms`` maps an abbreviation to its expansion; a first use that
    already stands next to its expansion ("доверительный интервал (ДИ)") is left as it is."""

    FORMS = {"ru": "{abbreviation} ({expansion})", "en": "{expansion} ({abbreviation})"}

    def __init__(self, terms: dict[str, str], lang: str) -> None:
        self.terms = dict(terms)
        self.lang = lang
        self.seen: set[str] = set()
        # The words of an abbreviation may already be joined by a no-break space ("ХК ИРО").
        self.patterns = {a: re.compile(r"(?<![\w\-])" + r"[ \u00a0]".join(map(re.escape, a.split(" "))) + r"(?![\w\-])")
                         for a in self.terms}

    def _first(self, abbreviation: str, text: str):
        """The first match of ``abbreviation`` that is not part of a longer one ("ИРО" in "ХК ИРО")."""
        longer = [other for other in self.terms if other != abbreviation and abbreviation in other]
        covered = [m.span() for other in longer for m in self.patterns[other].finditer(text)]
        for match in self.patterns[abbreviation].finditer(text):
            if not any(start <= match.start() and match.end() <= end for start, end in covered):
                return match
        return None

    def __call__(self, text: str) -> str:
        for abbreviation, expansion in self.terms.items():
            if abbreviation in self.seen:
                continue
            match = self._first(abbreviation, text)
            if match is None:
                continue
            self.seen.add(abbreviation)
            before, after = text[:match.start()], text[match.end():]
            # Already introduced: "доверительный интервал (ДИ)", "ДИ (доверительный интервал)".
            if before.rstrip().endswith("(") or after.lstrip().startswith("(") or expansion.lower() in text.lower():
                continue
            text = before + self.FORMS[self.lang].format(abbreviation=match.group(), expansion=expansion) + after
        return text


# Elements whose text is never typeset: code, provenance values (class "literal"), formulas
# (class "math", set by ``formulas.formula_html``) and styles.
_VERBATIM_TAGS = {"style", "script", "code", "pre", "kbd", "samp"}
_VERBATIM_CLASSES = {"literal", "hash", "math"}
# Abbreviations are expanded in running text only, not in headings, tables, captions or subtitles.
_PROSE_TAGS = {"p", "li"}
_NO_EXPANSION_CLASSES = {"subtitle", "running"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6", "caption", "figcaption", "th", "td", "title"}
_VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_TOKEN = re.compile(r"(<!--.*?-->|<[^>]*>)", re.DOTALL)
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*?)(/?)>", re.DOTALL)
_CLASS = re.compile(r"""\bclass\s*=\s*["']([^"']*)["']""")
INLINE_MATH = re.compile(r"\$([^$]+)\$")


def _around_formulas(text: str, lang: str, after: bool, before: bool) -> str:
    """``_apply_rules`` on text next to inline formulas, with a letter standing in for each
    formula, so that the rules see what the reader sees ("где T — общая": the dash stays)."""
    prefix, suffix = "x" if after else "", "x" if before else ""
    typeset_text = _apply_rules(prefix + text + suffix, lang)
    return typeset_text[len(prefix):len(typeset_text) - len(suffix)]


def typeset_html(markup: str, lang: str, terms: dict[str, str] | None = None) -> str:
    """Every text node of an HTML document set by ``typeset``, in document order, with the
    abbreviations of ``terms`` expanded at their first use in running text (``FirstUse``) and
    inline formulas, written ``$d_{ppc2}$`` in the strings, set as text by
    ``formulas.formula_html`` (so that no ASCII identifier reaches a reader).
    Markup, attribute values and verbatim elements (``code``, class ``literal`` or ``hash``,
    styles) are left as they are."""
    expand = FirstUse(terms or {}, lang)
    stack: list[tuple[str, bool, bool]] = []  # (tag, verbatim, running text)
    depth = 0
    out = []
    for token in _TOKEN.split(markup):
        if not token:
            continue
        tag = _TAG.fullmatch(token)
        if token.startswith("<"):
            out.append(token)
            if tag is None:
                continue
            closing, name, attributes, self_closing = tag.group(1), tag.group(2).lower(), tag.group(3), tag.group(4)
            if closing:
                while stack:
                    if stack.pop()[0] == name:
                        break
            elif not self_closing and name not in _VOID_TAGS:
                classes = set(_CLASS.search(attributes).group(1).split()) if _CLASS.search(attributes) else set()
                verbatim = name in _VERBATIM_TAGS or bool(classes & _VERBATIM_CLASSES) or any(v for _, v, _ in stack)
                prose = name in _PROSE_TAGS and not classes & _NO_EXPANSION_CLASSES
                stack.append((name, verbatim, prose))
            continue
        if any(v for _, v, _ in stack) or not token.strip():
            out.append(token)
            continue
        prose = any(p for _, _, p in stack) and not any(t in _HEADINGS for t, _, _ in stack)
        segments = INLINE_MATH.split(_html.unescape(token))
        for number, segment in enumerate(segments):
            if number % 2:  # inside $...$: set as a formula, never as words
                out.append(formula_html(segment))
                continue
            text = _around_formulas(segment, lang, after=number > 0, before=number < len(segments) - 1)
            text, depth = quotes(text, lang, depth)
            out.append(_html.escape(expand(text) if prose else text, quote=False))
    return "".join(out)
