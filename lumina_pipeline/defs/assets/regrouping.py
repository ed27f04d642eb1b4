"""The one path of every catalog-wide grouping (stacks, bursts, duplicate groups): under the
catalog lock, read the catalog's rows, find the groups, settle them against the previous ones
(ids and people's decisions carry over) and replace them, all in one transaction.

A regrouping with nothing new to read does nothing. Each grouping stores with its groups, in
the same transaction, a digest of what it read: the catalog's rows as its rule reads them and
its settings (storage/groups.input_digest). When the next regrouping would read the same, it
returns at once with the last figures. The digest is of the very rows it read, so no other
writer (inventory, batches, file actions) and no order of commits can make it skip work it
should do, and it needs no writer's help. People's decisions are not part of it: they are
kept by every regrouping and need none."""

import time
from collections.abc import Callable

import dagster as dg
import polars as pl

from lumina_pipeline.analysis.continuity import Found, Settled, settle, with_names
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.catalogs import get_catalog, lock_catalog
from lumina_pipeline.storage.groups import Grouping, input_digest, last_regrouping, load_catalog_rows, load_previous
from lumina_pipeline.storage.groups import replace as replace_groups

Find = Callable[[pl.DataFrame], Found]  # the catalog's rows -> the groups a rule finds
# (settled groups, the rows) -> the figures stored with them, and more metadata to show
Describe = Callable[[Settled, pl.DataFrame], tuple[dict, dict]]


def regroup(
    context: dg.AssetExecutionContext, config: dg.Config, database: CatalogDatabase, grouping: Grouping,
    find: Find, describe: Describe,
) -> dg.MaterializeResult:
    """Regroup the catalog of the run's partition by `find`; its metadata are `describe`'s."""
    started = time.perf_counter()
    settings = rule_settings(context.assets_def, config)
    with database.transaction() as session:
        connection = session.connection()
        catalog_id = get_catalog(session, context.partition_key).id
        lock_catalog(connection, catalog_id)  # people's decisions and other regroupings wait
        rows = load_catalog_rows(connection, catalog_id)
        read = input_digest(rows, grouping, settings)
        if (last := last_regrouping(connection, catalog_id, grouping)).get("read") == read:
            figures, shown = {**last["figures"], "skipped": "nothing changed"}, {}
        else:
            settled = settle(with_names(find(rows), rows), load_previous(connection, catalog_id, grouping))
            figures, shown = describe(settled, rows)
            replace_groups(connection, catalog_id, grouping, settled, read, figures)
    return dg.MaterializeResult(
        metadata={**figures, **shown, "elapsed_seconds": round(time.perf_counter() - started, 3)}
    )


def rule_settings(asset: dg.AssetsDefinition, config: dg.Config) -> str:
    """A grouping's settings as input_digest takes them: its code version and its config."""
    return f"{asset.code_versions_by_key[asset.key]} {config.model_dump_json()}"
