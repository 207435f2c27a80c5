"""Tables written in chunks from each column's distinct values (``core.csv_text``) are the bytes
``DataFrame.to_csv`` writes: quoting, missing values, floats, dates, categoricals, mixed objects."""

import numpy as np
import pandas as pd
import pytest

from dpo_eval.core import csv_text, io


def _pandas(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, float_format=csv_text.FLOAT_FORMAT,
                        lineterminator="\n").encode("utf-8")


def _tricky(rows: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "key": pd.Categorical(np.repeat([f"P{i:04d}" for i in range(rows // 10)], 10)),
        "name": np.repeat(["a,b", 'say "hi"', "line\nbreak", "Москва", None, "plain"] * (rows // 60), 10),
        "cohort": pd.Categorical(np.repeat(["program", None, "comparison"] * (rows // 30), 10)),
        "share": np.repeat(rng.choice([0.1 + 0.2, -0.0, 0.0, np.nan, 1e20, 5.0], rows // 10), 10),
        "value": rng.integers(1, 6, rows),
        "careless": rng.random(rows) < 0.5,
        "mixed": np.array([1, 1.0, True, "1", None] * (rows // 5), dtype=object),
        "day": pd.to_datetime(["2025-01-01"] * (rows - 1) + ["2025-01-02"]),
        "time": pd.to_datetime(["2025-01-01 10:00:01"] * (rows - 1) + [None]),
        "points": pd.Categorical(np.repeat([1.5, 2.0, np.nan], rows // 3)),
        "single": rng.random(rows).astype(np.float32),
    })


@pytest.mark.parametrize("columns", [None, ["key"], ["value", "careless"], ["key", "cohort", "value"]])
def test_chunks_are_the_bytes_pandas_writes(columns):
    frame = _tricky() if columns is None else _tricky()[columns]
    assert b"".join(csv_text.csv_chunks(frame)) == _pandas(frame)
    assert b"".join(csv_text.csv_chunks(frame.iloc[:0])) == _pandas(frame.iloc[:0])


def test_chunk_boundaries_and_repeated_rows_do_not_change_the_text(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_text, "CHUNK_ROWS", 7)
    frame = _tricky()
    chunks = list(csv_text.csv_chunks(frame))
    assert len(chunks) == 1 + -(-len(frame) // 7)
    assert b"".join(chunks) == _pandas(frame)
    io.write_outputs({tmp_path / "t.csv": frame})
    assert (tmp_path / "t.csv").read_bytes() == _pandas(frame)
