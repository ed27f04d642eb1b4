"""The images API on the corpus catalog: filters and pages, files as browsers need them,
decisions that survive re-runs, and requests it must refuse."""

import io
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.api.app import ApiSettings, create_app
from lumina_pipeline.api.groups import removable_file
from lumina_pipeline.cli import main
from lumina_pipeline.defs.jobs import CATALOG_ASSETS
from lumina_pipeline.export import _removable_record, export_catalog
from lumina_pipeline.storage.browse import RemovableFile
from lumina_pipeline_tests.api.conftest import CATALOG

IMAGES = f"/api/catalogs/{CATALOG}/images"


def every_page(client, limit: int, **filters) -> list[dict]:
    items, after = [], 0
    while after is not None:
        page = client.get(IMAGES, params={**filters, "after": after, "limit": limit}).json()
        items += page["items"]
        after = page["next_after"]
    return items


def test_pages_walk_every_file_once_in_id_order(served):
    ids = [item["id"] for item in every_page(served.client, limit=7)]
    assert ids == sorted(set(ids))
    total = served.query("SELECT count(*) FROM images WHERE catalog_id = :c")
    assert len(ids) == total[0][0]


def test_filters_select_what_they_say(served, corpus):
    client = served.client
    errors = {item["path"] for item in every_page(client, 100, status="error")}
    assert {f["path"] for f in corpus.files(expected_status="error")} <= errors  # and the videos with no frames:
    assert errors <= {f["path"] for f in corpus.manifest["files"] if "error" in f["acceptable_status"]}
    nikon = every_page(client, 100, camera="e950")
    assert nikon and all(item["camera"] == "NIKON E950" for item in nikon)
    christmas = every_page(client, 100, captured_from="2021-12-24", captured_to="2021-12-24")
    assert {item["path"] for item in christmas} >= {f["path"] for f in corpus.manifest["bursts"][1]["frames"]}
    assert all(item["captured_at"].startswith("2021-12-24") for item in christmas)
    in_bursts = every_page(client, 100, in_burst="true")
    assert {item["path"] for item in in_bursts} == {f["path"] for b in corpus.manifest["bursts"] for f in b["frames"]}
    grouped = every_page(client, 100, in_group="true")
    members = served.query("SELECT count(*) FROM duplicate_members m JOIN duplicate_groups g ON g.id = m.group_id "
                           "WHERE g.catalog_id = :c")[0][0]
    assert len(grouped) == members > 0
    assert not {i["id"] for i in grouped} & {i["id"] for i in every_page(client, 100, in_group="false")}
    located = client.get(f"/api/images/{served.image_id('Toscana 2008/DSCN0038.jpg')}").json()
    near = every_page(client, 100, geohash=located["geohash"][:5])
    assert located["id"] in {item["id"] for item in near}
    assert all(
        client.get(f"/api/images/{item['id']}").json()["geohash"].startswith(located["geohash"][:5]) for item in near
    )


def test_one_image_has_its_metadata_hashes_group_and_burst(served):
    frame = served.client.get(f"/api/images/{served.image_id('Zoo 2019/DSCN1202.JPG')}").json()
    assert frame["camera"] == "NIKON E950" and frame["captured_at"] == "2019-07-14T10:15:03.480"
    assert len(frame["hashes"]["dhash"]) == 16 and frame["hashes"]["hash_version"]
    assert frame["burst_id"] and frame["burst_sequence"] == 2 and frame["is_best_frame"] is not None
    assert frame["group"] is None  # frames of one burst are not duplicates: the burst is their review
    export = served.client.get(f"/api/images/{served.image_id('Exports/web/DSCN0021_small.jpg')}").json()
    assert export["group"]["similarity_type"] == "perceptual" and export["burst_id"] is None


def test_thumbnails_and_files_are_served_in_formats_browsers_show(served, corpus):
    client = served.client
    jpeg_id = served.image_id("Toscana 2008/DSCN0038.jpg")
    thumbnail = client.get(f"/api/images/{jpeg_id}/thumbnail")
    assert thumbnail.headers["content-type"] == "image/jpeg" and "max-age" in thumbnail.headers["cache-control"]
    assert min(Image.open(io.BytesIO(thumbnail.content)).size) >= 256
    again = client.get(f"/api/images/{jpeg_id}/thumbnail", headers={"If-None-Match": thumbnail.headers["etag"]})
    assert again.status_code == 304 and not again.content
    original = client.get(f"/api/images/{jpeg_id}/file")
    assert original.content == (corpus.photos / "Toscana 2008/DSCN0038.jpg").read_bytes()
    heif = client.get(f"/api/images/{served.image_id('Phone/2022/IMG_20220112_073014.heif')}/file")
    assert heif.status_code == 200 and heif.headers["content-type"] == "image/jpeg"
    detail = client.get(f"/api/images/{served.image_id('Phone/2022/IMG_20220112_073014.heif')}").json()
    assert Image.open(io.BytesIO(heif.content)).size == (detail["width"], detail["height"])


def test_decisions_are_stored_and_survive_a_rerun_of_the_catalog_assets(served):
    client, pipeline = served.client, served.pipeline
    zoo = client.get(f"/api/images/{served.image_id('Zoo 2019/DSCN1204.JPG')}").json()
    export = client.get(f"/api/images/{served.image_id('Exports/web/DSCN0021_small.jpg')}").json()
    group = client.get(f"/api/groups/{export['group']['group_id']}").json()
    keeper = next(m["image"]["id"] for m in group["members"] if not m["is_primary"])
    decided = decision(client, "groups", group["id"], primary_image_id=keeper).json()
    assert decided["reviewed"] and decided["primary_chosen"] and decided["primary_image_id"] == keeper
    burst = client.get(f"/api/bursts/{zoo['burst_id']}").json()
    best = burst["frames"][-1]["id"]
    assert decision(client, "bursts", burst["id"], best_image_id=best).status_code == 200
    assert client.put(f"/api/images/{keeper}/rating", json={"rating": 4}).json()["rating"] == 4

    dg.materialize(
        CATALOG_ASSETS, partition_key=CATALOG, instance=pipeline.instance, resources=pipeline.resources
    )

    group_after = client.get(f"/api/groups/{group['id']}").json()
    assert group_after["reviewed"] and group_after["primary_image_id"] == keeper
    burst_after = client.get(f"/api/bursts/{burst['id']}").json()
    assert burst_after["reviewed"] and burst_after["best_image_id"] == best
    assert client.get(f"/api/images/{keeper}").json()["rating"] == 4
    removable = client.get(f"/api/catalogs/{CATALOG}/removable").json()
    listed = [f["image_id"] for f in removable["files"]]
    left_over = {m["image"]["id"] for m in group["members"]} | {f["id"] for f in burst["frames"]}
    assert left_over - {keeper, best} <= set(listed)
    assert keeper not in listed and best not in listed
    assert len(listed) == len(set(listed))
    assert removable["total_bytes"] == sum(f["size_bytes"] for f in removable["files"])
    with Session(pipeline.engine) as session:
        exported = export_catalog(session, CATALOG)["removable"]
    assert {f["path"] for f in exported} == {f["path"] for f in removable["files"]}


def test_manual_tags_are_added_found_and_removed(served):
    client, image_id = served.client, served.image_id("Reisen/Leuchtturm 🌅 Abend.jpg")
    tags = client.post(f"/api/images/{image_id}/tags", json={"name": "Urlaub"}).json()
    assert {"name": "Urlaub", "source": "manual", "confidence": None} in tags
    assert [item["id"] for item in every_page(client, 100, tag="Urlaub")] == [image_id]
    remaining = client.delete(f"/api/images/{image_id}/tags/Urlaub").json()
    assert "Urlaub" not in {tag["name"] for tag in remaining}
    assert client.delete(f"/api/images/{image_id}/tags/Urlaub").status_code == 404


def test_a_mark_for_bytes_the_file_no_longer_holds_is_refused(served):
    client, image_id = served.client, served.image_id("Reisen/Leuchtturm 🌅 Abend.jpg")
    shown, other = client.get(f"/api/images/{image_id}").json()["checksum"], "0" * 64
    rating, tags = f"/api/images/{image_id}/rating", f"/api/images/{image_id}/tags"

    def tag_names(response) -> set[str]:
        return {tag["name"] for tag in response.json()}

    refused = client.put(rating, json={"rating": 2, "checksum": other})
    assert refused.status_code == 409 and "other bytes" in refused.json()["detail"]
    assert client.post(tags, json={"name": "Leuchtturm", "checksum": other}).status_code == 409
    assert client.get(f"/api/images/{image_id}").json()["rating"] is None
    assert "Leuchtturm" not in {tag["name"] for tag in client.get(f"/api/images/{image_id}").json()["tags"]}
    assert client.put(rating, json={"rating": 2, "checksum": shown}).json()["rating"] == 2
    assert "Leuchtturm" in tag_names(client.post(tags, json={"name": "Leuchtturm", "checksum": shown}))
    assert client.delete(f"{tags}/Leuchtturm", params={"checksum": other}).status_code == 409
    assert "Leuchtturm" not in tag_names(client.delete(f"{tags}/Leuchtturm", params={"checksum": shown}))
    client.put(rating, json={"rating": None})


def test_a_mark_given_while_a_batch_rewrites_the_file_waits_for_it_and_is_refused(served):
    """The batch's transaction has written the row's new checksum and holds it: the rating
    waits until the batch commits, then finds other bytes and saves nothing."""
    client, image_id = served.client, served.image_id("Reisen/Leuchtturm 🌅 Abend.jpg")
    shown = client.get(f"/api/images/{image_id}").json()["checksum"]
    rewrite = text("UPDATE images SET checksum = :checksum WHERE id = :i")
    try:
        with served.pipeline.engine.connect() as batch, ThreadPoolExecutor(1) as pool:
            batch.execute(rewrite, {"checksum": "0" * 64, "i": image_id})
            answer = pool.submit(client.put, f"/api/images/{image_id}/rating", json={"rating": 5, "checksum": shown})
            time.sleep(1)
            assert not answer.done()
            batch.commit()
            assert answer.result(timeout=30).status_code == 409
        assert client.get(f"/api/images/{image_id}").json()["rating"] is None
    finally:
        with served.pipeline.engine.begin() as connection:
            connection.execute(rewrite, {"checksum": shown, "i": image_id})


def test_similar_and_text_search_use_the_embeddings(served):
    client = served.client
    original = served.image_id("Toscana 2008/DSCN0038.jpg")
    similar = client.get(f"/api/images/{original}/similar", params={"k": 3}).json()
    assert similar[0]["score"] > 0.99 and "DSCN0038" in similar[0]["path"]  # one of its copies, the first by id
    found = client.get(f"/api/catalogs/{CATALOG}/search", params={"q": "lighthouse", "k": 3}).json()
    assert found[0]["path"] == "Reisen/Leuchtturm 🌅 Abend.jpg" and "beacon" in found[0]["reason"]
    assert client.get(f"/api/catalogs/{CATALOG}/search", params={"q": "a dog"}).json() == []  # the corpus has no dog
    blank = client.get(f"/api/catalogs/{CATALOG}/search", params={"q": "  "})
    assert blank.status_code == 422 and "q" in str(blank.json()["detail"])


def test_bad_requests_get_clear_json_errors(served):
    client = served.client
    for url, status in [
        ("/api/images/999999999", 404),
        ("/api/images/abc", 422),
        ("/api/images/0", 422),
        (f"{IMAGES}?limit=501", 422),
        (f"{IMAGES}?status=lost", 422),
        (f"{IMAGES}?geohash=a!", 422),
        ("/api/catalogs/nowhere/images", 404),
        ("/api/groups/not-a-uuid", 422),
        ("/api/groups/00000000-0000-0000-0000-000000000000", 404),
    ]:
        response = client.get(url)
        assert response.status_code == status and response.json()["detail"], url
    group = client.get(f"/api/catalogs/{CATALOG}/groups", params={"limit": 1}).json()["items"][0]
    [(stranger,)] = served.query(
        """SELECT min(id) FROM images WHERE status = 'ok' AND catalog_id = :c
           AND id NOT IN (SELECT image_id FROM duplicate_members WHERE group_id = :g)""",
        g=group["id"],
    )
    refused = decision(client, "groups", group["id"], primary_image_id=stranger)
    assert refused.status_code == 422 and refused.json()["detail"].startswith("not every image of [")
    reviewed = client.get(f"/api/groups/{group['id']}").json()["reviewed"]
    for body in ({}, {"reviewd": False}, {"reviewed": not reviewed, "best_image_id": stranger}):  # no silent accept
        assert client.post(f"/api/groups/{group['id']}/decision", json=body).status_code == 422, body
    assert client.get(f"/api/groups/{group['id']}").json()["reviewed"] == reviewed
    assert client.put(f"/api/images/{stranger}/rating", json={"rating": 6}).status_code == 422


def test_files_are_served_only_from_inside_the_catalogs_folders(served, corpus, tmp_path):
    client = served.client
    assert client.get("/api/images/..%2F..%2Fetc%2Fpasswd/file").status_code in (404, 422)
    climbing = served.image_id("Alte Kameras/Canon_40D.jpg")
    served.query("UPDATE images SET path = :p WHERE id = :i", p=b"../../../../../../etc/passwd", i=climbing)
    outside = tmp_path / "secret.jpg"
    Image.new("RGB", (8, 8)).save(outside)
    link = corpus.photos / "Alte Kameras" / "link.jpg"
    os.symlink(outside, link)
    try:
        served.query("UPDATE images SET path = :p WHERE id = :i",
                     p=b"Alte Kameras/link.jpg", i=served.image_id("Alte Kameras/Canon_DIGITAL_IXUS_400.jpg"))
        for path in ("../../../../../../etc/passwd", "Alte Kameras/link.jpg"):
            response = client.get(f"/api/images/{served.image_id(path)}/file")
            assert response.status_code == 404 and "not inside" in response.json()["detail"]
    finally:
        link.unlink()
        served.query("UPDATE images SET path = :p WHERE id = :i", p=b"Alte Kameras/Canon_40D.jpg", i=climbing)
        served.query("UPDATE images SET path = :p WHERE path = :q", p=b"Alte Kameras/Canon_DIGITAL_IXUS_400.jpg",
                     q=b"Alte Kameras/link.jpg")


def test_a_catalog_folder_swapped_for_a_symlink_to_elsewhere_serves_nothing(served, corpus, tmp_path):
    video = served.image_id("Phone/2022/IMG_0002.MOV")
    assert served.client.get(f"/api/images/{video}/file").status_code == 200
    elsewhere, moved = tmp_path / "elsewhere", corpus.photos.with_name("photos-moved")
    (elsewhere / "Phone" / "2022").mkdir(parents=True)
    (elsewhere / "Phone" / "2022" / "IMG_0002.MOV").write_bytes(b"a file outside every catalog")
    os.rename(corpus.photos, moved)
    os.symlink(elsewhere, corpus.photos)  # the folder as stored is now a link: its files are not the catalog's
    try:
        response = served.client.get(f"/api/images/{video}/file")
        assert response.status_code == 404 and "not inside" in response.json()["detail"]
    finally:
        os.unlink(corpus.photos)
        os.rename(moved, corpus.photos)


def test_a_photo_before_9999_12_31_and_a_tag_with_a_slash_are_ordinary(served):
    client = served.client
    everything = client.get(f"/api/catalogs/{CATALOG}/images", params={"limit": 500}).json()["items"]
    until_the_end = client.get(f"/api/catalogs/{CATALOG}/images", params={"captured_to": "9999-12-31", "limit": 500})
    assert until_the_end.status_code == 200
    assert len(until_the_end.json()["items"]) == sum(image["captured_at"] is not None for image in everything) > 0
    photo = served.image_id("Alte Kameras/Canon_40D.jpg")
    assert {"name": "AC/DC", "source": "manual", "confidence": None} in client.post(
        f"/api/images/{photo}/tags", json={"name": "AC/DC"}).json()
    assert "AC/DC" not in [tag["name"] for tag in client.delete(f"/api/images/{photo}/tags/AC%2FDC").json()]


def test_a_quarantined_photo_is_shown_and_found_with_its_status(served):
    photo = served.image_id("Alte Kameras/Canon_40D.jpg")
    served.query("UPDATE images SET status = 'quarantined' WHERE id = :i", i=photo)
    try:
        assert served.client.get(f"/api/images/{photo}").json()["status"] == "quarantined"
        assert [item["id"] for item in every_page(served.client, 100, status="quarantined")] == [photo]
        assert photo in {item["id"] for item in every_page(served.client, 100)}
    finally:
        served.query("UPDATE images SET status = 'ok' WHERE id = :i", i=photo)


def test_a_token_guards_the_app_and_a_public_host_needs_one(served):
    from fastapi.testclient import TestClient

    settings = ApiSettings(**{**served.settings.__dict__, "token": "s3cret"})
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/catalogs").status_code == 401
        assert client.get("/api/catalogs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/catalogs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/", params={"token": "s3cret"}).status_code == 200
        assert client.get("/api/catalogs").status_code == 200  # the cookie the link set
    with TestClient(create_app(settings), cookies={"lumina_token": "an-earlier-token"}) as browser:  # left before
        assert browser.get("/", params={"token": "s3cret"}).status_code == 200  # the new link still opens the page
    assert main(["serve", "--host", "0.0.0.0"]) == 2


def test_a_stack_is_one_card_with_its_badge_and_files_and_a_video_plays(served, corpus):
    client = served.client
    still = client.get(f"/api/images/{served.image_id('Phone/2022/IMG_0002.HEIC')}").json()
    group = client.get(f"/api/groups/{still['group']['group_id']}").json()
    stacks = [member["image"]["stack"] for member in group["members"]]
    assert [s["badge"] for s in stacks] == ["LIVE", "LIVE"] and stacks[0]["id"] != stacks[1]["id"]
    shot = next(s for s in corpus.manifest["stacks"] if "Phone/2022/IMG_0002.HEIC" in s["members"])
    assert [f["path"] for f in still["stack"]["files"]] == shot["members"]  # the primary (the still) first
    clip = next(f for f in still["stack"]["files"] if f["kind"] == "video")
    played = client.get(clip["file_url"])
    assert played.headers["content-type"] == "video/mp4"
    assert played.content == (corpus.photos / "Phone/2022/IMG_0002.MOV").read_bytes()
    video = client.get(f"/api/images/{clip['id']}").json()
    assert video["duration_seconds"] == pytest.approx(2.5, abs=0.1) and video["thumbnail_url"]
    served_as = client.get(clip["file_url"]).headers["content-type"]  # documented, as every answer must be
    documented = client.get("/openapi.json").json()["paths"]["/api/images/{image_id}/file"]["get"]["responses"]
    assert served_as == "video/mp4" and "video/*" in documented["200"]["content"]
    page = client.get(f"/review/{CATALOG}/groups/{group['id']}").text
    assert page.count(">LIVE<") == 2 and "IMG_0002.MOV" in page and f'src="{clip["file_url"]}"' in page


def test_keep_all_keep_several_and_bulk_accept_through_the_api(served):
    client = served.client
    kodak = client.get(f"/api/images/{served.image_id('exif.org samples/kodak-dc210.jpg')}").json()["group"]
    group = client.get(f"/api/groups/{kodak['group_id']}").json()
    not_a_member = served.image_id("Toscana 2008/DSCN0038.jpg")
    refused = decision(client, "groups", group["id"], keep=[not_a_member])
    assert refused.status_code == 422 and refused.json()["detail"].startswith("not every image of [")
    members = [m["image"]["id"] for m in group["members"]]
    stale = decision(client, "groups", group["id"], keep_all=True, members=members[1:])
    assert stale.status_code == 409 and "members changed" in stale.json()["detail"]  # seen before one joined
    assert not client.get(f"/api/groups/{group['id']}").json()["reviewed"]
    some = members[1:2]
    several = decision(client, "groups", group["id"], keep=some, members=members).json()
    assert [m["image"]["id"] for m in several["members"] if m["image"]["kept"]] == some
    dismissed = decision(client, "groups", group["id"], keep_all=True).json()
    assert dismissed["reviewed"] and all(m["image"]["kept"] for m in dismissed["members"])
    listed = {f["image_id"] for f in client.get(f"/api/catalogs/{CATALOG}/removable").json()["files"]}
    assert not listed & {m["image"]["id"] for m in dismissed["members"]}

    assert client.get(f"/api/catalogs/{CATALOG}/accept").status_code == 422  # which groups?
    unreviewed = client.get(f"/api/catalogs/{CATALOG}/groups", params={"reviewed": "false", "limit": 500}).json()
    exact = [g for g in unreviewed["items"] if g["similarity_type"] == "exact"]
    alike = [g for g in unreviewed["items"] if g["confidence"] >= 97]
    assert client.get(f"/api/catalogs/{CATALOG}/accept", params={"groups": "alike", "min_confidence": 97}).json()[
        "groups"] == len(alike)
    preview = client.get(f"/api/catalogs/{CATALOG}/accept", params={"groups": "exact"}).json()
    assert preview["groups"] == len(exact) > 0
    stale = client.post(f"/api/catalogs/{CATALOG}/accept", params={"groups": "exact", "seen": "0" * 64})
    assert stale.status_code == 409 and "changed since they were counted" in stale.json()["detail"]
    assert client.post(f"/api/catalogs/{CATALOG}/accept", params={"groups": "exact"}).status_code == 422  # unseen
    assert not any(client.get(f"/api/groups/{g['id']}").json()["reviewed"] for g in exact)
    accepted = client.post(f"/api/catalogs/{CATALOG}/accept", params={"groups": "exact", "seen": preview["seen"]})
    assert accepted.json() == preview
    assert all(client.get(f"/api/groups/{g['id']}").json()["reviewed"] for g in exact)


def decision(client, kind: str, item_id: str, **body):
    """A person's decision on a group or burst, as the review page sends it."""
    return client.post(f"/api/{kind}/{item_id}/decision", json={"reviewed": True, **body})


def test_a_removable_file_whose_name_is_not_utf8_is_given_by_its_bytes_too():
    """Its text shows each such byte as \\xNN, which another file may have for a name."""
    row = RemovableFile(1, "/photos", b"Gr\xfc\xdfe.jpg", 3565, "duplicate", uuid.uuid4(), b"keep.jpg", "/nas", 2)
    listed = removable_file(row)
    assert (listed.path, listed.path_hex) == ("Gr\\xfc\\xdfe.jpg", b"Gr\xfc\xdfe.jpg".hex())
    assert _removable_record(row)["path_hex"] == listed.path_hex
    exported = _removable_record(row)  # each with its folder: a catalog of several may hold one path in two
    assert (exported["source_root"], exported["keep_source_root"], exported["keep"]) == ("/photos", "/nas", "keep.jpg")
    assert (listed.source_root, listed.keep_source_root) == ("/photos", "/nas")
