"""Small markdown previews shown with each materialization in the Dagster UI."""

import polars as pl


def markdown_table(frame: pl.DataFrame, limit: int = 10) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.head(limit).iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v).replace("|", "/") for v in row) + " |")
    return "\n".join(lines)
