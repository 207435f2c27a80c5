"""The long responses table: one row per answer, ordered by participant, wave and item, built
without a sort over every answer; checked against a plain cell-by-cell melt, including
retrospective items asked in two waves (their "then" answers interleave by item)."""

import numpy as np
import pandas as pd
import pytest

from dpo_eval.core.codebook import load_codebook
from dpo_eval.core.study import WAVE_ORDER
from dpo_eval.ingest.assembly import _long_responses

CONTEXT = ["participant_key", "institution", "municipality", "settlement", "cohort", "role",
           "years_in_management", "wave"]


def _melted(kept: pd.DataFrame, item_columns: list[str], codebook) -> pd.DataFrame:
    items = {item.id: item for item in codebook.items}
    rows = []
    for position, row in enumerate(kept.itertuples(index=False)):
        record = row._asdict()
        for column_position, column in enumerate(item_columns):
            raw = kept[column].iloc[position]
            if np.isnan(raw):
                continue
            item = items[column.removeprefix("then:")]
            low, high = codebook.scale_points(item.scale)
            wave = "then" if column.startswith("then:") else record["wave"]
            rows.append({**{c: record[c] for c in CONTEXT}, "wave": wave,
                         "domain": item.domain, "item": item.id, "raw_value": int(raw),
                         "value": low + high - int(raw) if item.reverse else int(raw),
                         "careless": record["careless"],
                         "_order": (record["participant_key"], WAVE_ORDER[wave], item.id)})
    melted = pd.DataFrame(rows)
    order = sorted(range(len(melted)), key=lambda i: melted["_order"].iloc[i])  # stable
    return melted.iloc[order].drop(columns="_order").reset_index(drop=True)


@pytest.mark.parametrize("retrospective_waves", [("post",), ("pre", "post")])
def test_long_table_is_the_ordered_melt_of_the_answers(retrospective_waves):
    codebook = load_codebook("config/codebook.yaml")
    rng = np.random.default_rng(len(retrospective_waves))
    kept = pd.DataFrame({"participant_key": [f"P{p:02d}" for p in rng.integers(0, 30, 120)],
                         "wave": rng.choice(["pre", "post", "followup"], 120)})
    kept = kept.drop_duplicates(["participant_key", "wave"]).reset_index(drop=True)
    for column in ["institution", "municipality", "settlement", "cohort", "role"]:
        kept[column] = rng.choice(["a", "b", None], len(kept)).astype(object)
    kept["years_in_management"] = rng.choice([1.0, 2.5, np.nan], len(kept))
    kept["careless"] = rng.random(len(kept)) < 0.3
    ids = [item.id for item in codebook.items]
    item_columns = ids + [f"then:{i}" for i in ids[:6]]
    rng.shuffle(item_columns)
    for column in item_columns:
        values = rng.integers(1, 6, len(kept)).astype(float)
        values[rng.random(len(kept)) < 0.3] = np.nan
        if column.startswith("then:"):
            values[~kept["wave"].isin(retrospective_waves).to_numpy()] = np.nan
        kept[column] = values
    long = _long_responses(kept, CONTEXT, item_columns, codebook)
    expected = _melted(kept, item_columns, codebook)
    assert len(long) == int(kept[item_columns].notna().to_numpy().sum())
    def comparable(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype(object).reset_index(drop=True)
        return frame.where(frame.notna(), "missing")

    pd.testing.assert_frame_equal(comparable(long), comparable(expected[long.columns]))
