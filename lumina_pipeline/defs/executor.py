"""Where a run's steps execute. By default in the run's own process, one after the other
(Dagster's in-process executor): a job's steps mostly wait for each other, and a process per
step would import the code location and load the image model again, seconds a batch run does
not have. With `LUMINA_CELERY_BROKER` set (a Redis URL such as `redis://queue-host:6379/0`),
every step becomes a Celery task that any worker listening to that
broker may take, on this machine or another (docs/deploy.md): the run's own process only hands
out the steps and collects their events."""

import os

import dagster as dg


@dg.definitions
def executor() -> dg.Definitions:
    broker = os.environ.get("LUMINA_CELERY_BROKER")
    if not broker:
        return dg.Definitions(executor=dg.in_process_executor)
    from dagster_celery import celery_executor  # the `celery` extra; imported only where it is used

    # The results come back through the same Redis: one service for both.
    return dg.Definitions(executor=celery_executor.configured({"broker": broker, "backend": broker}))
