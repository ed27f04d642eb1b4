"""The Celery app of Lumina's workers: `celery -A lumina_pipeline.celery_workers worker`
takes the steps that runs hand out (defs/executor.py), with the settings the runs use.

dagster-celery's own app (`dagster_celery.app`) reads its settings from a module named
`dagster_celery_config` that its `worker start -y` command writes; this one is that app with
Lumina's settings, so a worker needs nothing but `LUMINA_CELERY_BROKER`."""

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from lumina_pipeline.defs.executor import celery_settings

app = make_app()
app.conf.update(celery_settings())
execute_plan = create_task(app)  # the one task of dagster-celery's executor: run a step
