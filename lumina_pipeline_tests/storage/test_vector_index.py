from lumina_pipeline.storage.embeddings import rebuilding_is_cheaper

DIMENSIONS = 1280  # the packaged model's vectors


def test_the_index_is_built_anew_when_that_costs_less_than_inserting_the_new_vectors():
    assert rebuilding_is_cheaper(pending=2_000, indexed=0, dimensions=DIMENSIONS)  # a library's first run
    assert rebuilding_is_cheaper(pending=2_000, indexed=4_000, dimensions=DIMENSIONS)  # a second library
    assert not rebuilding_is_cheaper(pending=50, indexed=10_000, dimensions=DIMENSIONS)  # a few new photos


def test_a_graph_larger_than_the_build_memory_is_built_anew_only_when_most_vectors_are_new():
    assert not rebuilding_is_cheaper(pending=200_000, indexed=1_000_000, dimensions=DIMENSIONS)
    assert rebuilding_is_cheaper(pending=600_000, indexed=500_000, dimensions=DIMENSIONS)
