"""The JSONB layout of an images row, in one place: which key of `dates` or `metadata` holds
each field a batch reads (named as in photos.ANALYSIS_SCHEMA), how a batch writes them and
how queries read them back. Queries name fields, never keys."""

# field -> (column, key)
FIELDS = {
    "captured_at": ("dates", "captured_at"),
    "captured_at_source": ("dates", "captured_at_source"),
    "capture_subsec": ("dates", "subsec"),
    "capture_offset": ("dates", "offset"),
    **{name: ("metadata", name) for name in (
        "format", "width", "height", "display_width", "display_height", "orientation", "camera_make",
        "camera_model", "camera_serial", "lens", "latitude", "longitude", "duration_seconds", "video_codec",
        "content_identifier",
    )},
}


def field(name: str, operator: str = "->") -> str:
    """SQL for one field of the images row `i`: as JSON, which the driver reads as Python
    values exactly as stored, or with `->>` as text, to compare or cast. Null when absent."""
    column, key = FIELDS[name]
    return f"i.{column}{operator}'{key}'"


def as_text(name: str) -> str:
    return field(name, "->>")


def selected(names: tuple[str, ...]) -> str:
    """A select list of fields as JSON values, each under its field name."""
    return ", ".join(f"{field(name)} AS {name}" for name in names)


def written(column: str) -> str:
    """SQL setting `column` (dates or metadata) from the fields of a staged analysis row `a`."""
    pairs = ", ".join(f"'{key}', a.{name}" for name, (into, key) in FIELDS.items() if into == column)
    return f"{column} = jsonb_strip_nulls(jsonb_build_object({pairs}))"
