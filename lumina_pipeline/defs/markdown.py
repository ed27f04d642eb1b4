"""Small markdown previews shown with each materialization in the Dagster UI."""

import dagster as dg
import polars as pl


def markdown_table(frame: pl.DataFrame) -> dg.MarkdownMetadataValue:
    """The frame's first ten rows; "none" for no rows, where a bare header looked broken."""
    if frame.is_empty():
        return dg.MetadataValue.md("none")
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.head(10).iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v).replace("|", "/") for v in row) + " |")
    return dg.MetadataValue.md("\n".join(lines))
