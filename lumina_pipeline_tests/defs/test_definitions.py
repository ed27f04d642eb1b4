import os
import subprocess
import sys

import dagster as dg

from lumina_pipeline.definitions import defs


def subclasses(cls: type) -> set[type]:
    return {found for child in cls.__subclasses__() for found in (child, *subclasses(child))}


def test_every_setting_a_run_takes_says_what_it_does():
    """The Launchpad shows each field's description beside it (resources are set by `lumina`)."""
    defs()
    settings = [cls for cls in subclasses(dg.Config)
                if cls.__module__.startswith("lumina_pipeline.") and not issubclass(cls, dg.ConfigurableResource)]
    undescribed = {f"{cls.__name__}.{name}" for cls in settings for name, field in cls.model_fields.items()
                   if not field.description}
    assert len(settings) >= 7 and undescribed == set()


def test_the_nightly_schedules_run_at_night_where_the_daemon_runs():
    listed = subprocess.run(
        [sys.executable, "-c", "from lumina_pipeline.definitions import defs\n"
         "print(sorted({s.execution_timezone for s in defs().schedules}))"],
        env=os.environ | {"TZ": "America/Los_Angeles"}, capture_output=True, text=True, check=True)

    assert listed.stdout.splitlines()[-1] == "['America/Los_Angeles']"
