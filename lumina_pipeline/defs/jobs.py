"""Jobs: the inventory of one catalog, the analysis of one (catalog, batch), and the
catalog-wide grouping that follows them."""

import dagster as dg

from lumina_pipeline.defs.assets.bursts import bursts
from lumina_pipeline.defs.assets.duplicates import duplicate_groups
from lumina_pipeline.defs.assets.images import photo_analysis
from lumina_pipeline.defs.assets.inventory import file_inventory

inventory_job = dg.define_asset_job("inventory_job", selection=[file_inventory])
batch_job = dg.define_asset_job("batch_job", selection=[photo_analysis])
catalog_job = dg.define_asset_job("catalog_job", selection=[duplicate_groups, bursts])

# For runs started from a terminal (`lumina run`, benchmarks): warnings and errors only.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
