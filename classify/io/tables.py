"""Corpus tables on disk: Parquet (lists and maps native), JSONL, CSV (lists and maps as JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .._cli import atomic_write
from ..errors import ConfigError


# --------------------------------------------------------------------------- output
def to_serialisable(df: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """Lists and dicts as JSON strings for CSV; Parquet/JSONL keep them native."""
    if fmt != "csv":
        return df
    out = df.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, (list, dict))).any():
            out[col] = out[col].map(lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v)
    return out


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as .parquet, .csv or .jsonl, atomically."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("parquet", "csv", "jsonl"):
        raise ConfigError(f"{path}: output must end in .parquet, .csv or .jsonl")
    data = to_serialisable(df, fmt)

    def write(tmp: Path) -> None:
        if fmt == "parquet":
            import pyarrow as pa

            # Reactions as a map (emoji -> count): a struct would need a field per emoji ever seen,
            # and cannot be written at all when no post has reactions.
            table = pa.Table.from_pandas(data.drop(columns=["reactions"]), preserve_index=False) if "reactions" in data.columns else None
            if table is not None:
                col = pa.array([list((d or {}).items()) for d in data["reactions"]], type=pa.map_(pa.string(), pa.int64()))
                table = table.append_column("reactions", col).select(list(data.columns))
                import pyarrow.parquet as pq

                pq.write_table(table, tmp)
            else:
                data.to_parquet(tmp, index=False)
        elif fmt == "csv":
            data.to_csv(tmp, index=False)
        else:
            data.to_json(tmp, orient="records", lines=True, force_ascii=False)

    return atomic_write(path, write)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by ``write_table`` (lists and dicts restored from CSV)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt == "parquet":
        df = pd.read_parquet(path)
    elif fmt == "jsonl":
        df = pd.read_json(path, lines=True, dtype=False)
    elif fmt == "csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        for col in df.columns:
            if df[col].str.startswith(("[", "{")).all() and len(df):
                df[col] = df[col].map(json.loads)
    else:
        raise ConfigError(f"{path}: expected .parquet, .csv or .jsonl")
    for col in ("paragraphs",):
        if col in df.columns:
            df[col] = df[col].map(list)
    if "reactions" in df.columns:  # a Parquet map comes back as (key, value) pairs
        df["reactions"] = df["reactions"].map(lambda d: {k: int(v) for k, v in dict(d if d is not None else {}).items() if v is not None})
    for col in ("media", "empty_text"):  # CSV stores booleans as text
        if col in df.columns and not pd.api.types.is_bool_dtype(df[col]):
            df[col] = df[col].map(lambda v: v if isinstance(v, bool) else str(v).strip().lower() == "true")
    return df

