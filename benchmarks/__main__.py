"""`make bench`: every performance target, each as a ratio to a baseline measured in the
same run on this machine. Numbers are printed, never asserted."""

from benchmarks import (
    actions,
    automation,
    captions,
    cli,
    embeddings,
    foundation,
    grouping,
    organize,
    partitions,
    precision,
    regrouping,
    scale,
    search,
    videos,
)

if __name__ == "__main__":
    foundation.run()
    grouping.run()
    regrouping.run()
    automation.run()
    partitions.run()
    embeddings.run()
    search.run()
    cli.run()
    captions.run()
    videos.run()
    scale.run()
    actions.run()
    organize.run()
    precision.run()
