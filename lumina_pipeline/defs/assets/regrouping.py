"""A regrouping with nothing new to read does nothing.

Each grouping (stacks, bursts, duplicate groups) stores with its groups, in the same
transaction, a digest of what it read: the catalog's rows as its rule reads them and its
settings (storage/groups.input_digest). When the next regrouping would read the same, under the
catalog lock, it returns at once with the last figures. The digest is of the very rows it read,
so no other writer (inventory, batches, file actions) and no order of commits can make it skip
work it should do, and it needs no writer's help. People's decisions are not part of it: they
are kept by every regrouping and need none."""

import time

import dagster as dg


def rule_settings(asset: dg.AssetsDefinition, config: dg.Config) -> str:
    """A grouping's settings as input_digest takes them: its code version and its config."""
    return f"{asset.code_versions_by_key[asset.key]} {config.model_dump_json()}"


def unchanged(last: dict, started: float) -> dg.MaterializeResult:
    """The materialization of a regrouping that had nothing new to read: the last one's figures."""
    elapsed = round(time.perf_counter() - started, 3)
    return dg.MaterializeResult(metadata={**last["figures"], "skipped": "nothing changed", "elapsed_seconds": elapsed})
