"""Numbers as people read them in the CLI's output and on the review page."""


def plural(count: int, noun: str) -> str:
    """`1 file`, `2 files`; for the nouns of Lumina's output (none of them irregular)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def size(byte_count: int) -> str:
    """Bytes in decimal units, as file managers show them: `950 bytes`, `2.5 MB`, `1.2 GB`."""
    if byte_count < 1000:
        return plural(byte_count, "byte")
    value, unit = byte_count / 1000, "KB"
    for larger in ("MB", "GB", "TB"):
        if value < 999.95:
            break
        value, unit = value / 1000, larger
    return f"{value:.1f} {unit}"


def camera_name(make: str | None, model: str | None) -> str:
    """'Canon EOS 40D', not 'Canon Canon EOS 40D': many models repeat their make."""
    make, model = (make or "").strip(), (model or "").strip()
    return model if make and model.lower().startswith(make.lower().split()[0]) else f"{make} {model}".strip()
