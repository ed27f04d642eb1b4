"""`checksum_verification`: re-read a share of every catalog's files against their checksums."""

from functools import partial

import dagster as dg
from pydantic import Field

from lumina_pipeline.analysis.files import absolute_paths, shown
from lumina_pipeline.analysis.verification import reverify
from lumina_pipeline.defs.assets.inventory import file_inventory
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.images import files_to_verify, mark_verified

OUTCOMES = ("same", "edited", "corrupted", "unreadable")


class VerificationConfig(dg.Config):
    share_per_run: float = Field(default=1 / 30, description=(
        "the share of each catalog's files re-read per run, least recently verified first (nightly: each about "
        "once a month)"))


@dg.asset(
    deps=[file_inventory],
    check_specs=[dg.AssetCheckSpec("checksums_unchanged", asset="checksum_verification",
                                   description="No file's content changed while its size and mtime did not")],
    kinds={"python", "postgres"},
    group_name="catalog",
    code_version="verification-v1",
)
def checksum_verification(config: VerificationConfig, database: CatalogDatabase) -> dg.MaterializeResult:
    """Re-read the least recently verified share of every catalog and record when each file
    was looked at. Its check fails, listing them, when a file's content changed while its size
    and mtime did not (bit rot, tampering); stored checksums are never overwritten. Such a file
    stays first in line: the check fails each night until it is restored from a backup (or, a
    change someone meant, `touch`ed, so the next run reads it). Files away (a drive unplugged)
    or edited wait their turn again, so that they never hold the others back."""
    batches = database.by_catalog(partial(files_to_verify, share=config.share_per_run))
    counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    corrupted: list[str] = []
    for name, files in batches.items():
        paths = absolute_paths(files["source_root"], files["path"])
        outcome = reverify(paths, files["size_bytes"], files["mtime_ns"], files["checksum"])
        with database.transaction() as session:
            mark_verified(session.connection(), files.filter(outcome != "corrupted")["id"])
        for key in counts:
            counts[key] += int((outcome == key).sum())
        corrupted += [f"{name}: {shown(path)}" for path in files.filter(outcome == "corrupted")["path"]]
    check = dg.AssetCheckResult(
        check_name="checksums_unchanged",
        passed=not corrupted,
        metadata={"corrupted_files": dg.MetadataValue.json(corrupted[:100])},
    )
    return dg.MaterializeResult(metadata=counts, check_results=[check])
