"""A table's CSV text in chunks of lines, byte-identical to ``DataFrame.to_csv`` (no index,
``FLOAT_FORMAT``, "\\n" line ends) and linear in the rows without pandas' cost per cell.

Each column's distinct values are rendered once, by pandas itself (so quoting and number
formats are pandas' own), and a row's line is put together from the rendered pieces.
Consecutive columns whose rows repeat (the context columns of a long table: constant over
runs of rows, or few distinct combinations) are rendered together as one piece, so that a
row costs a couple of string concatenations, not one per cell. Tables pandas formats by the
whole column (dates: the format depends on all values) have such columns rendered whole.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

FLOAT_FORMAT = "%.10g"
CHUNK_ROWS = 250_000
# A block of columns is rendered per distinct combination when there are at most this many
# combinations of its columns' codes, or per run of equal rows when its runs are at most
# 1/RUN_SHARE of the rows; otherwise the block ends and the next column starts a new one.
DENSE_COMBINATIONS = 1 << 20
RUN_SHARE = 4
_MARK = "\x1f"


class NotRenderable(Exception):
    """A value whose rendered text cannot be cut out of pandas' output unambiguously."""


def _to_csv(frame: pd.DataFrame, header: bool) -> str:
    return frame.to_csv(index=False, header=header, float_format=FLOAT_FORMAT, lineterminator="\n")


def _rendered(values: pd.Series) -> np.ndarray:
    """Each value as pandas writes it in a CSV cell (quoted where it must be)."""
    marked = pd.DataFrame({"value": values.reset_index(drop=True), "mark": _MARK})
    pieces = _to_csv(marked, header=False).split(f",{_MARK}\n")
    if len(pieces) != len(values) + 1 or pieces[-1]:
        raise NotRenderable
    rendered = np.empty(len(values), dtype=object)
    rendered[:] = pieces[:-1]
    return rendered


def _smallest(codes: np.ndarray, count: int) -> np.ndarray:
    for dtype in (np.int8, np.int16, np.int32):
        if count < np.iinfo(dtype).max:
            return codes.astype(dtype, copy=False)
    return codes.astype(np.int64, copy=False)


def _column_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of a column's values (-1: missing), in the smallest integer type, and the text of
    each code shifted by one (text 0: a missing value)."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        if dtype.categories.dtype.kind in "Mm":
            return _column_codes(column.astype(object))
        # pandas writes a categorical's values as objects (a float category without the
        # float format).
        uniques = pd.Series(np.asarray(dtype.categories, dtype=object), dtype=object)
        return column.cat.codes.to_numpy(), _with_missing(_rendered(uniques))
    if (dtype.kind in "Mm" or not isinstance(dtype, np.dtype) or
            (dtype.kind == "O" and pd.api.types.infer_dtype(column, skipna=True) != "string")):
        # Formatted by the whole column (dates), an extension type, or objects of several
        # types (1, 1.0 and True are one key to a hash table): rendered whole.
        return _column_codes(pd.Series(_rendered(column), dtype=object))
    if dtype.kind == "f":
        # By bit pattern: -0.0 and 0.0 are written differently; every NaN is written "".
        bits = column.to_numpy().view(f"i{dtype.itemsize}")
        codes, unique_bits = pd.factorize(bits)
        uniques = pd.Series(unique_bits.view(dtype), dtype=dtype)
    else:
        codes, uniques = pd.factorize(column.to_numpy(), use_na_sentinel=True)
        uniques = pd.Series(uniques, dtype=dtype)
    return _smallest(codes, len(uniques)), _with_missing(_rendered(uniques))


def _with_missing(rendered: np.ndarray) -> np.ndarray:
    texts = np.empty(len(rendered) + 1, dtype=object)
    texts[0] = ""
    texts[1:] = rendered
    return texts


def _block(codes: list[np.ndarray], texts: list[np.ndarray], changes: np.ndarray, dense: bool
           ) -> tuple[np.ndarray, np.ndarray]:
    """One code per row for a block of columns and the text of each code (cells joined by
    commas): by distinct combination (``dense``) or by run of equal rows."""
    if len(codes) == 1:
        return codes[0] + 1, texts[0]
    if dense:
        sizes = [len(t) for t in texts]
        joint = np.zeros(len(codes[0]), dtype=np.int32)
        for column_codes, size in zip(codes, sizes):
            joint *= size
            joint += column_codes
            joint += 1
        present = np.flatnonzero(np.bincount(joint, minlength=int(np.prod(sizes))))
        remap = np.zeros(int(np.prod(sizes)), dtype=np.int32)
        remap[present] = np.arange(len(present))
        parts, row_codes = np.unravel_index(present, sizes), remap[joint]
    else:
        starts = np.flatnonzero(changes)
        parts = [c[starts].astype(np.int64) + 1 for c in codes]
        row_codes = _smallest(np.cumsum(changes) - 1, len(starts))
    text = np.empty(len(parts[0]), dtype=object)
    text[:] = [",".join(cells) for cells in zip(*(t[p] for t, p in zip(texts, parts)))]
    return row_codes, text


def _blocks(frame: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    """The columns grouped into consecutive blocks whose rows repeat (see the module)."""
    rows = len(frame)
    blocks, codes, texts = [], [], []
    changes, combinations, dense = None, 1, True
    for name in frame.columns:
        column_codes, column_texts = _column_codes(frame[name])
        column_changes = np.ones(rows, dtype=bool)
        np.not_equal(column_codes[1:], column_codes[:-1], out=column_changes[1:])
        if codes:
            joined = changes | column_changes
            fits_dense = dense and combinations * len(column_texts) <= DENSE_COMBINATIONS
            # Joined by runs while the runs' texts cost less than a piece more per row.
            runs = np.count_nonzero(joined)
            if fits_dense or (runs * RUN_SHARE <= rows and runs * (len(codes) + 1) <= rows):
                codes.append(column_codes)
                texts.append(column_texts)
                changes, dense = joined, fits_dense
                combinations *= len(column_texts)
                continue
            blocks.append(_block(codes, texts, changes, dense))
        codes, texts = [column_codes], [column_texts]
        changes, combinations = column_changes, len(column_texts)
        dense = combinations <= DENSE_COMBINATIONS
    blocks.append(_block(codes, texts, changes, dense))
    return blocks


def csv_chunks(frame: pd.DataFrame) -> Iterator[bytes]:
    """The CSV text of ``frame`` as UTF-8 (header first) in pieces of at most CHUNK_ROWS lines;
    joined, the pieces equal ``frame.to_csv(index=False, float_format=FLOAT_FORMAT,
    lineterminator="\\n").encode("utf-8")``."""
    try:
        if not len(frame.columns) or not len(frame) or not frame.columns.is_unique:
            raise NotRenderable
        blocks = _blocks(frame)
    except NotRenderable:
        yield _to_csv(frame, header=True).encode("utf-8")
        return
    ends = [","] * (len(blocks) - 1) + ["\n"]
    # Each distinct piece encoded once: the lines are joined as bytes, never encoded whole.
    texts = []
    for (_, text), end in zip(blocks, ends):
        encoded = np.empty(len(text), dtype=object)
        encoded[:] = [(piece + end).encode("utf-8") for piece in text]
        texts.append(encoded)
    yield _to_csv(frame.iloc[:0], header=True).encode("utf-8")
    for start in range(0, len(frame), CHUNK_ROWS):
        window = slice(start, start + CHUNK_ROWS)
        # The pieces of every line side by side, joined once (no string per line).
        pieces = np.empty((len(blocks[0][0][window]), len(blocks)), dtype=object)
        for index, ((codes, _), text) in enumerate(zip(blocks, texts)):
            pieces[:, index] = text[codes[window]]
        yield b"".join(pieces.ravel())
