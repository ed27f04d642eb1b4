"""The code location: every definition under `defs/`, as Dagster's defs-folder loader
(`load_from_defs_folder`) finds them: the modules' assets, checks, jobs, sensors and schedules,
and what their `@dg.definitions` functions return.

Not that loader itself: besides, it describes every installed component type for the UI's
component browser (Lumina has no components), 0.45 s in each process that loads the code
location, as every run does."""

import importlib
import pkgutil
import warnings

import dagster as dg
from dagster.components.definitions import LazyDefinitions

from lumina_pipeline import defs as defs_package


@dg.definitions
def defs() -> dg.Definitions:
    names = [module.name for module in pkgutil.walk_packages(defs_package.__path__, f"{defs_package.__name__}.")]
    modules = [importlib.import_module(name) for name in names]
    loaders = {id(value): value for module in modules for value in vars(module).values()
               if isinstance(value, LazyDefinitions)}
    with warnings.catch_warnings(action="ignore", category=dg.PreviewWarning):  # a preview in Dagster 1.13
        found = dg.load_definitions_from_modules(modules)
    return dg.Definitions.merge(found, *(load() for load in loaders.values()))
