"""`vector_index`: the vectors batches wrote, brought into their model's HNSW index off the
batch path (storage/embeddings.py says why); searches find them before and after."""

import dagster as dg

from lumina_pipeline.defs.partitions import by_catalog, catalogs
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.catalogs import get_catalog
from lumina_pipeline.storage.embeddings import EXACT_SCAN_VECTORS, index_vectors


@dg.asset(
    partitions_def=catalogs,
    deps=[dg.AssetDep("embeddings", partition_mapping=by_catalog)],
    kinds={"postgres"},
    group_name="catalog",
    code_version="vector-index-v1",
    description=f"The catalog's vectors in their model's HNSW index (vectors_indexed: how many this run brought in); "
    f"none while the model's table holds fewer than {EXACT_SCAN_VECTORS:,}, which searches scan exactly",
)
def vector_index(context: dg.AssetExecutionContext, database: CatalogDatabase) -> dg.MaterializeResult:
    with database.transaction() as session:
        catalog_id = get_catalog(session, context.partition_key).id
    indexed = index_vectors(database.engine, catalog_id)  # outside the transaction: it builds concurrently
    return dg.MaterializeResult(metadata={"vectors_indexed": indexed})
