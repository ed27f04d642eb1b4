"""`duplicate_groups`: which files of a catalog are copies or the same picture saved again."""

import dagster as dg
import polars as pl
from pydantic import Field

from lumina_pipeline.analysis.continuity import Found, Settled
from lumina_pipeline.analysis.duplicates import (
    DEFAULT_AVOIDED_FOLDERS,
    DEFAULT_FORMATS,
    KEEPER_ORDER,
    KeeperRule,
    NearDuplicateRule,
    group_catalog,
    reclaimable_bytes,
    too_flat,
)
from lumina_pipeline.defs.assets.regrouping import regroup
from lumina_pipeline.defs.markdown import markdown_table
from lumina_pipeline.defs.partitions import by_catalog, catalogs
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.groups import DUPLICATES, readable_path


class DuplicatesConfig(dg.Config):
    """The near-duplicate rule (see NearDuplicateRule) and which file of a group is kept
    (see KeeperRule: the keys of `keeper_order`, the format preference, the folders whose
    files should not be kept when a copy elsewhere is as good)."""

    ahash_bits: int = Field(default=5, description=(
        "candidates: photos with any of their four hashes within this many bits (and, for photos "
        "hashed before pHash was stored, their ahash)"))
    dhash_bits: int = Field(default=10, description=(
        "only for photos hashed before pHash was stored: dhash within this many bits, or whash within whash_bits"))
    whash_bits: int = Field(default=8, description="only for photos hashed before pHash was stored: see dhash_bits")
    phash_bits: int = Field(default=12, description="a candidate is a near-duplicate when its pHash is this close")
    confirm_dhash_bits: int = Field(default=16, description="... and its dhash within this many")
    keeper_order: list[str] = Field(default=list(KEEPER_ORDER), description=(
        "which file of a group is kept: the first of these keys that tells two files apart decides"))
    format_preference: list[str] = Field(default=list(DEFAULT_FORMATS), description="the `format` key's order")
    avoided_folders: list[str] = Field(default=list(DEFAULT_AVOIDED_FOLDERS), description=(
        "the `library_folder` key: a file in a folder whose path holds one of these loses to a copy elsewhere"))


@dg.asset(
    partitions_def=catalogs,
    deps=[
        dg.AssetDep("metadata", partition_mapping=by_catalog),
        dg.AssetDep("hashes", partition_mapping=by_catalog),
        "stacks",
        "bursts",
    ],
    kinds={"polars", "postgres"},
    group_name="catalog",
    code_version="duplicates-v4",  # bump when the rule or the stored result changes
)
def duplicate_groups(
    context: dg.AssetExecutionContext, config: DuplicatesConfig, database: CatalogDatabase
) -> dg.MaterializeResult:
    """Exact groups (same SHA-256) and near-duplicate groups (perceptual hashes) of the
    catalog, each with a primary image; ids, reviews and chosen primaries carry over."""
    rule = NearDuplicateRule(
        ahash=config.ahash_bits, dhash=config.dhash_bits, whash=config.whash_bits, phash=config.phash_bits,
        confirm_dhash=config.confirm_dhash_bits,
    )
    keeper = KeeperRule(tuple(config.keeper_order), tuple(config.format_preference), tuple(config.avoided_folders))

    def find(rows: pl.DataFrame) -> Found:
        members, groups = group_catalog(rows, rule, keeper)
        return Found(groups.rename({"primary_id": "choice"}), members.join(rows.select("id", "checksum"), on="id"))

    return regroup(context, config, database, DUPLICATES, find, _describe)


def _describe(settled: Settled, rows: pl.DataFrame) -> tuple[dict, dict]:
    groups = settled.groups.rename({"choice": "primary_image_id"})
    figures = {
        "exact_groups": int((groups["similarity_type"] == "exact").sum()),
        "near_duplicate_groups": int((groups["similarity_type"] == "perceptual").sum()),
        "files_in_groups": settled.members["id"].n_unique(),
        "reclaimable_bytes": reclaimable_bytes(settled.members, groups, rows.select("id", "size_bytes")),
        "too_flat_to_compare": too_flat(rows),
    }
    kept = int(groups["reviewed"].sum()) + int(groups["chosen"].sum())
    return figures, {"kept_decisions": kept, "largest_groups": _largest_groups(groups, rows)}


def _largest_groups(groups: pl.DataFrame, rows: pl.DataFrame) -> dg.MarkdownMetadataValue:
    """The ten largest groups, least alike first among equals, with their primary's path."""
    largest = groups.join(rows.select(primary_image_id="id", primary="path"), on="primary_image_id").sort(
        "size", "confidence", descending=[True, False]
    ).head(10).with_columns(primary=pl.col("primary").map_elements(readable_path, return_dtype=pl.String))
    return markdown_table(largest.select("similarity_type", "size", "confidence", "reviewed", "primary"))
