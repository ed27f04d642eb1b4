from lumina_pipeline.storage.catalogs import CATALOG_NAME, slugify


def test_a_folder_name_becomes_a_catalog_name_with_its_accents_dropped():
    assert slugify("Meine Fotos — Été") == "meine-fotos-ete"
    assert slugify("Ölgemälde_2024") == "olgemalde_2024"
    assert slugify("x" * 62 + " y") == "x" * 62


def test_folder_names_without_latin_letters_get_names_of_their_own():
    family, trip = slugify("家族"), slugify("旅行")
    assert family != trip and family == slugify("家族")
    assert CATALOG_NAME.match(family) and CATALOG_NAME.match(trip)
