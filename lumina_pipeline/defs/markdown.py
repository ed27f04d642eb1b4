"""Small markdown previews shown with each materialization in the Dagster UI."""

import dagster as dg
import polars as pl

from lumina_pipeline.analysis.files import shown


def markdown_table(frame: pl.DataFrame) -> dg.MarkdownMetadataValue:
    """The frame's first ten rows, paths (bytes) as text; "none" for no rows, where a bare
    header looked broken."""
    if frame.is_empty():
        return dg.MetadataValue.md("none")
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.head(10).iter_rows():
        lines.append("| " + " | ".join(_cell(value) for value in row) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def _cell(value: object) -> str:
    if isinstance(value, bytes):  # a path
        value = shown(value)
    return "" if value is None else str(value).replace("|", "/")
