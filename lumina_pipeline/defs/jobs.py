"""Jobs: the inventory of one catalog, and the analysis of one (catalog, batch)."""

import dagster as dg

from lumina_pipeline.defs.assets.images import photo_analysis
from lumina_pipeline.defs.assets.inventory import file_inventory

inventory_job = dg.define_asset_job("inventory_job", selection=[file_inventory])
batch_job = dg.define_asset_job("batch_job", selection=[photo_analysis])

# For runs started from a terminal (`lumina run`, benchmarks): warnings and errors only.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
