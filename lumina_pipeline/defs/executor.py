"""Where a run's steps execute. By default in the run's own process, one after the other
(Dagster's in-process executor): a job's steps mostly wait for each other, and a process per
step would import the code location and load the image model again, seconds a batch run does
not have. With `LUMINA_CELERY_BROKER` set (a Redis URL such as `redis://queue-host:6379/0`),
every step becomes a Celery task that any worker listening to that broker may take
(`lumina_pipeline/celery_workers.py`), on this machine or another (docs/deploy.md): the run's
own process only hands out the steps and collects their events."""

import os

import dagster as dg

# Redis's own visibility timeout is an hour; a batch of 500 camera photos takes a minute or two,
# and a step that runs twice does no harm
REDELIVER_SECONDS = 600


def celery_settings() -> dict:
    """The Celery settings of both sides, the runs handing out steps and the workers.

    A worker acknowledges a step's task when the step ends, not when it starts (late acks), so
    that the step of a worker that dies (killed, out of memory, its machine gone) is handed to
    another worker: at once where the worker's pool saw its process die, else by Redis once
    `LUMINA_CELERY_REDELIVER_SECONDS` passed without the acknowledgement; the run's process
    waits for the step meanwhile. Set it above the longest step (an inventory of the largest
    folder, a regrouping): a step still running then is handed out again, and runs twice
    (harmlessly, as every step may, but for nothing)."""
    broker = os.environ["LUMINA_CELERY_BROKER"]
    redeliver = int(os.environ.get("LUMINA_CELERY_REDELIVER_SECONDS", REDELIVER_SECONDS))
    return {
        "broker_url": broker,
        "result_backend": broker,  # the results come back through the same Redis: one service for both
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "broker_transport_options": {
            "visibility_timeout": redeliver,
            # an idle worker looks for overdue tasks every tenth of that (kombu: interval x throttle)
            "unacked_restore_interval": max(1, redeliver // 10),
            "unacked_restore_throttle": 1,
        },
    }


@dg.definitions
def executor() -> dg.Definitions:
    if not os.environ.get("LUMINA_CELERY_BROKER"):
        return dg.Definitions(executor=dg.in_process_executor)
    from dagster_celery import celery_executor  # the `celery` extra; imported only where it is used

    settings = celery_settings()
    return dg.Definitions(executor=celery_executor.configured(
        {"broker": settings["broker_url"], "backend": settings["result_backend"], "config_source": settings}
    ))
