"""An organize run that SIGKILLs itself at one moment of its N-th operation (the moments of
dying_quarantine.py), copying as across filesystems, for the resume tests; or an undo of the
newest run that SIGKILLs itself once it put back its N-th file, or once it journaled every
file put back, before it drops the folders it emptied (`cleanup`):

    python -m lumina_pipeline_tests.actions.dying_organize URL CATALOG QUARANTINE MOMENT N move|copy
    python -m lumina_pipeline_tests.actions.dying_organize URL CATALOG QUARANTINE -|cleanup N undo"""

import os
import sys

from lumina_pipeline.actions import runs
from lumina_pipeline.actions.organize import organize
from lumina_pipeline.storage.database import make_engine
from lumina_pipeline_tests.actions.dying_quarantine import die, die_at, dying_on

if __name__ == "__main__":
    url, catalog, quarantine, moment, count, operation = sys.argv[1:7]
    if operation == "undo" and moment == "cleanup":
        runs.Actions._remove_emptied_folders = lambda self, entries: die()
    elif operation == "undo":
        runs.CHUNK = 4  # the files of the earlier chunks journaled undone, those of the kill's chunk not
        runs.undo = dying_on(int(count), runs.undo)
    else:
        die_at(moment, int(count))
    with runs.file_actions(make_engine(url), catalog, os.fsencode(quarantine), always_copy=True) as actions:
        if operation == "undo":
            actions.undo()
        else:
            organize(actions, dry_run=False, move=operation == "move")
