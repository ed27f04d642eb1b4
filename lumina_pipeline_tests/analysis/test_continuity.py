import polars as pl

from lumina_pipeline.analysis.continuity import PREVIOUS_MEMBERS_SCHEMA, PREVIOUS_SCHEMA, carry_over

MEMBERS = {"group_key": pl.String, "id": pl.Int64, "checksum": pl.String}


def previous(reviewed=True, chosen=None, chosen_checksum=None, members=("a", "b", "c")):
    groups = pl.DataFrame([("g1", reviewed, chosen, chosen_checksum)], schema=PREVIOUS_SCHEMA, orient="row")
    rows = [("g1", "perceptual", checksum) for checksum in members]
    return groups, pl.DataFrame(rows, schema=PREVIOUS_MEMBERS_SCHEMA, orient="row")


def members(*pairs, key="perceptual:a"):
    return pl.DataFrame([(key, id_, checksum) for id_, checksum in pairs], schema=MEMBERS, orient="row")


def test_unchanged_group_keeps_id_review_and_choice():
    carried = carry_over(members((1, "a"), (2, "b"), (3, "c")), *previous(chosen=2, chosen_checksum="b"))
    assert carried.select("group_id", "reviewed", "chosen_id").row(0) == ("g1", True, 2)


def test_a_group_that_gained_a_copy_keeps_its_id_and_choice_but_needs_review_again():
    carried = carry_over(members((1, "a"), (2, "b"), (3, "c"), (4, "c")), *previous(chosen=2, chosen_checksum="b"))
    assert carried.select("group_id", "reviewed", "chosen_id").row(0) == ("g1", False, 2)


def test_a_moved_file_keeps_the_choice_and_the_review():
    carried = carry_over(members((1, "a"), (9, "b"), (3, "c")), *previous(chosen=2, chosen_checksum="b"))
    assert carried.select("group_id", "reviewed", "chosen_id").row(0) == ("g1", True, 9)


def test_a_group_that_kept_a_minority_of_members_gets_a_new_id():
    carried = carry_over(members((1, "a"), (7, "x"), (8, "y")), *previous())
    assert carried["group_id"][0] != "g1" and carried["reviewed"][0] is False


def test_only_groups_of_the_same_kind_inherit():
    carried = carry_over(members((1, "a"), (2, "b"), (3, "c"), key="exact:a"), *previous())
    assert carried["group_id"][0] != "g1"
