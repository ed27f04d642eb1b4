import polars as pl

from lumina_pipeline.analysis.continuity import (
    PREVIOUS_MEMBERS_SCHEMA,
    PREVIOUS_SCHEMA,
    REMEMBERED_SCHEMA,
    Found,
    Previous,
    settle,
)

MEMBERS = {"group_key": pl.String, "id": pl.Int64, "checksum": pl.String, "name": pl.String}
NOTHING_REMEMBERED = pl.DataFrame(schema=REMEMBERED_SCHEMA)


def previous(reviewed=True, chosen=None, chosen_checksum=None, members=("a", "b", "c"), chosen_name=None):
    """One group of these checksums (ids 1, 2, ...) keeping `chosen`, else the first."""
    keeper = chosen_checksum or members[0]
    groups = pl.DataFrame([("g1", reviewed, chosen, keeper, chosen_name)], schema=PREVIOUS_SCHEMA, orient="row")
    rows = [("g1", "perceptual", checksum, id_) for id_, checksum in enumerate(members, 1)]
    return Previous(groups, pl.DataFrame(rows, schema=PREVIOUS_MEMBERS_SCHEMA, orient="row"), NOTHING_REMEMBERED)


def found(*pairs, key="perceptual:a", names=None):
    """One group of these (id, checksum) members, of these file `names`; the rule chooses the first."""
    names = names or [None] * len(pairs)
    members = pl.DataFrame([(key, id_, checksum, name) for (id_, checksum), name in zip(pairs, names, strict=True)],
                           schema=MEMBERS, orient="row")
    return Found(pl.DataFrame({"group_key": [key], "choice": [pairs[0][0]]}), members)


def test_unchanged_group_keeps_id_review_and_choice():
    settled = settle(found((1, "a"), (2, "b"), (3, "c")), previous(chosen=2, chosen_checksum="b")).groups
    assert settled.select("group_id", "reviewed", "choice").row(0) == ("g1", True, 2)


def test_a_group_that_gained_a_copy_keeps_its_id_and_choice_but_needs_review_again():
    settled = settle(found((1, "a"), (2, "b"), (3, "c"), (4, "c")), previous(chosen=2, chosen_checksum="b")).groups
    assert settled.select("group_id", "reviewed", "choice").row(0) == ("g1", False, 2)


def test_a_moved_file_keeps_the_choice_and_the_review():
    settled = settle(found((1, "a"), (9, "b"), (3, "c")), previous(chosen=2, chosen_checksum="b")).groups
    assert settled.select("group_id", "reviewed", "choice").row(0) == ("g1", True, 9)


def test_a_group_that_only_lost_members_stays_reviewed_while_its_chosen_keeper_is_there():
    kept_several = previous(chosen=2, chosen_checksum="b")
    assert settle(found((1, "a"), (2, "b")), kept_several).groups["reviewed"].to_list() == [True]  # c quarantined
    assert settle(found((1, "a"), (3, "c")), kept_several).groups["reviewed"].to_list() == [False]  # the keeper went
    lost_one_gained_one = found((1, "a"), (2, "b"), (9, "x"))
    assert settle(lost_one_gained_one, previous(chosen=2, chosen_checksum="b", members=("a", "b", "c", "d"))
                  ).groups["reviewed"].to_list() == [False]
    # reviewed before reviewing chose the keeper: which file the rule keeps may change, so ask
    assert settle(found((1, "a"), (2, "b"), (3, "c")), previous()).groups["reviewed"].to_list() == [False]


def test_a_group_moved_with_a_file_that_has_no_checksum_keeps_its_id():
    """A photo and its sidecar (never read, so no checksum), both moved: the photo alone tells."""
    with_sidecar = previous(chosen=1, chosen_checksum="a", members=("a", None))
    settled = settle(found((8, "a"), (9, None)), with_sidecar).groups
    assert settled.select("group_id", "reviewed", "choice").row(0) == ("g1", True, 8)


def test_a_keeper_renamed_among_its_exact_copies_stays_the_keeper():
    copies = previous(chosen=2, chosen_checksum="x", members=("x", "x", "x"))
    settled = settle(found((1, "x"), (3, "x"), (9, "x")), copies).groups  # 2 is now 9
    assert settled.select("reviewed", "choice").row(0) == (True, 9)


def test_a_keeper_moved_with_its_exact_copies_stays_the_file_of_its_name():
    """A folder holding the chosen copy and another moved: both are new rows; the chosen one is of its name."""
    copies = previous(chosen=2, chosen_checksum="x", members=("x", "x"), chosen_name="IMG_1 Kopie.jpg")
    settled = settle(found((8, "x"), (9, "x"), names=["IMG_1.jpg", "IMG_1 Kopie.jpg"]), copies).groups
    assert settled.select("reviewed", "choice").row(0) == (True, 9)


def test_a_group_that_kept_a_minority_of_members_gets_a_new_id():
    settled = settle(found((1, "a"), (7, "x"), (8, "y")), previous()).groups
    assert settled["group_id"][0] != "g1" and settled["reviewed"][0] is False


def test_only_groups_of_the_same_kind_inherit():
    settled = settle(found((1, "a"), (2, "b"), (3, "c"), key="exact:a"), previous()).groups
    assert settled["group_id"][0] != "g1"


def test_without_a_persons_choice_the_rules_stands_and_members_get_the_groups_id():
    settled = settle(found((1, "a"), (2, "b"), (3, "c")), previous(chosen=None))
    assert settled.groups.select("group_id", "choice", "chosen").row(0) == ("g1", 1, False)
    assert settled.members["group_id"].to_list() == ["g1"] * 3


def test_a_kept_choice_is_marked_as_a_persons():
    settled = settle(found((1, "a"), (2, "b"), (3, "c")), previous(chosen=2, chosen_checksum="b"))
    assert settled.groups["chosen"].to_list() == [True]


def test_a_group_and_its_copy_with_the_same_checksums_each_keep_their_id():
    groups = pl.DataFrame([("s1", False, None, None, None), ("s2", False, None, None, None)], schema=PREVIOUS_SCHEMA,
                          orient="row")
    rows = [("s1", "stack", "heic", 1), ("s1", "stack", "mov", 2),
            ("s2", "stack", "heic", 3), ("s2", "stack", "mov", 4)]
    before = Previous(groups, pl.DataFrame(rows, schema=PREVIOUS_MEMBERS_SCHEMA, orient="row"), NOTHING_REMEMBERED)
    keys = ["stack:phone", "stack:phone", "stack:backup", "stack:backup"]
    members = pl.DataFrame({"group_key": keys, "id": [1, 2, 3, 4], "checksum": ["heic", "mov"] * 2, "name": None},
                           schema=MEMBERS)
    now = Found(pl.DataFrame({"group_key": ["stack:phone", "stack:backup"], "choice": [1, 3]}), members)
    for order in (now, Found(now.groups.reverse(), now.members.reverse())):
        settled = settle(order, before).groups
        assert dict(settled.select("group_key", "group_id").iter_rows()) == {"stack:phone": "s1", "stack:backup": "s2"}


def nothing_before(remembered: pl.DataFrame) -> Previous:
    """No previous group (they all dissolved), only what is remembered."""
    return Previous(pl.DataFrame(schema=PREVIOUS_SCHEMA), pl.DataFrame(schema=PREVIOUS_MEMBERS_SCHEMA), remembered)


def test_a_group_that_dissolved_and_formed_again_comes_back_with_its_decision():
    gone = settle(found((1, "a")), previous(chosen=2, chosen_checksum="b"))  # b and c quarantined
    assert gone.groups["reviewed"].to_list() == [False]
    back = settle(found((1, "a"), (2, "b"), (3, "c")), nothing_before(gone.remembered))  # undone
    assert back.groups.select("reviewed", "choice", "chosen").row(0) == (True, 2, True)
    assert back.remembered.is_empty()  # the group's own row holds the decision again


def test_a_remembered_decision_needs_the_same_members_counted_with_multiplicity():
    remembered = settle(found((1, "a")), previous(members=("a", "b", "b"))).remembered
    assert remembered["members"].to_list() == ["a b b"]
    for other in (found((1, "a"), (2, "b")), found((1, "a"), (2, "b"), (3, "b"), (4, "b"))):
        assert settle(other, nothing_before(remembered)).groups["reviewed"].to_list() == [False]


def test_a_decision_taken_back_is_forgotten():
    remembered = settle(found((1, "a")), previous()).remembered
    undecided = previous(reviewed=False)
    assert settle(found((1, "a")), undecided._replace(remembered=remembered)).remembered.is_empty()


def test_a_decision_is_not_recalled_on_two_groups_with_the_same_checksums():
    remembered = settle(found((1, "a")), previous(members=("heic", "mov"))).remembered
    keys = ["burst:phone", "burst:phone", "burst:backup", "burst:backup"]
    members = pl.DataFrame({"group_key": keys, "id": [1, 2, 3, 4], "checksum": ["heic", "mov"] * 2, "name": None},
                           schema=MEMBERS)
    both = Found(pl.DataFrame({"group_key": ["burst:phone", "burst:backup"], "choice": [1, 3]}), members)
    assert settle(both, nothing_before(remembered)).groups["reviewed"].to_list() == [False, False]


def test_a_review_comes_back_only_with_the_file_it_kept():
    reviewed_pair = previous(chosen=1, chosen_checksum="a", members=("a", "b"))
    grown = settle(found((1, "a"), (2, "b"), (3, "c")), reviewed_pair)  # c joins: asked again, the pair remembered
    assert grown.groups["reviewed"].to_list() == [False] and not grown.remembered.is_empty()
    chose_b = Previous(grown.groups.select("group_id", "reviewed", chosen_id=pl.lit(2, pl.Int64),
                                           chosen_checksum=pl.lit("b"), chosen_name=pl.lit(None, pl.String)),
                       grown.members.select("group_id", kind=pl.lit("perceptual"), checksum="checksum", id="id"),
                       grown.remembered)
    shrunk = settle(found((1, "a"), (2, "b")), chose_b).groups  # c gone again; b chosen meanwhile, not reviewed
    assert shrunk.select("reviewed", "choice").row(0) == (False, 2)

    remembered = settle(found((2, "x")), previous(chosen=1, chosen_checksum="x", members=("x", "x"))).remembered
    renamed = settle(found((2, "x"), (9, "x")), nothing_before(remembered)).groups  # 1 renamed to 9, 2 put back
    assert renamed["reviewed"].to_list() == [False]  # which copy is the one kept, a guess: asked again

    unchosen = settle(found((1, "a")), previous(members=("a", "b"))).remembered  # reviewed before reviews chose
    assert settle(found((1, "a"), (2, "b")), nothing_before(unchosen)).groups["reviewed"].to_list() == [False]
