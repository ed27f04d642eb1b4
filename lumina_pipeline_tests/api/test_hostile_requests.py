"""Requests a web page or a careless client could send: another site's name in `Host` (DNS
rebinding), writes from another origin, loosely typed bodies, a token without its scheme."""

import pytest
from fastapi.testclient import TestClient

from lumina_pipeline.api.app import ApiSettings, create_app
from lumina_pipeline_tests.api.conftest import CATALOG

TOKEN = "s3cret"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def guarded(served):
    """The app with a token, reached by a name that is not loopback, as on a home server."""
    settings = ApiSettings(**{**served.settings.__dict__, "token": TOKEN})
    with TestClient(create_app(settings), base_url="http://photos.example:8765") as client:
        yield client


def tags_of(served, image_id: int) -> set[str]:
    return {name for (name,) in served.query("SELECT t.name FROM image_tags i JOIN tags t ON t.id = i.tag_id "
                                             "WHERE i.image_id = :i", i=image_id)}


def test_without_a_token_only_loopback_host_names_are_answered(served):
    client, image_id = served.client, served.image_id("Toscana 2008/DSCN0038.jpg")
    for host in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example", "localhost.evil.example:8765"):
        foreign = {"Host": host}
        for response in (
            client.get("/", headers=foreign),
            client.get(f"/api/images/{image_id}/file", headers=foreign),
            client.post(f"/api/images/{image_id}/tags", json={"name": "rebound"}, headers=foreign),
        ):
            assert response.status_code == 400, host
            assert "loopback" in response.json()["detail"] and host in response.json()["detail"]
    assert "rebound" not in tags_of(served, image_id)
    for host in ("127.0.0.1", "127.0.0.1:8765", "localhost", "LOCALHOST:8765", "[::1]", "[::1]:8765"):
        assert client.get("/api/catalogs", headers={"Host": host}).status_code == 200, host


def test_with_a_token_any_host_name_is_answered_but_only_with_the_token(guarded):
    assert guarded.get("/api/catalogs", headers={"Host": "evil.example"}).status_code == 401
    assert guarded.get("/api/catalogs", headers={"Host": "evil.example", **BEARER}).status_code == 200
    assert guarded.get("/", headers=BEARER).status_code == 200


def test_writes_are_accepted_only_from_the_servers_own_origin(served, guarded):
    client, image_id = served.client, served.image_id("Toscana 2008/DSCN0038.jpg")
    tags = f"/api/images/{image_id}/tags"
    # Another loopback page (another port or name) is another origin too.
    for origin in ("http://evil.example", "http://127.0.0.1:9999", "http://localhost", "null"):
        refused = client.post(tags, json={"name": "forged"}, headers={"Origin": origin})
        assert refused.status_code == 403 and origin in refused.json()["detail"], origin
    assert client.delete(f"{tags}/x", headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.put(f"/api/images/{image_id}/rating", json={"rating": 1},
                      headers={"Origin": "http://evil.example"}).status_code == 403
    assert "forged" not in tags_of(served, image_id)

    own = {"Origin": "http://127.0.0.1"}  # the client's base URL: the review page's own fetch
    assert client.post(tags, json={"name": "own page"}, headers=own).status_code == 200
    assert client.delete(f"{tags}/own page", headers=own).status_code == 200
    read = client.get(f"/api/images/{image_id}", headers={"Origin": "http://evil.example"})
    # Reads are not checked: without a CORS header the browser keeps the answer from that page.
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers

    assert guarded.post(tags, json={"name": "forged"},
                        headers={"Origin": "http://evil.example", **BEARER}).status_code == 403
    assert guarded.post(tags, json={"name": "own page"},
                        headers={"Origin": "http://photos.example:8765", **BEARER}).status_code == 200
    assert guarded.delete(f"{tags}/own page", headers=BEARER).status_code == 200
    assert not {"forged", "own page"} & tags_of(served, image_id)


def rating_refused(served, image_id: int, body: bytes) -> dict:
    """The one error of a refused rating; the stored rating unchanged."""
    before = served.query("SELECT rating FROM images WHERE id = :i", i=image_id)
    response = served.client.put(f"/api/images/{image_id}/rating", content=body,
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 422, body
    assert served.query("SELECT rating FROM images WHERE id = :i", i=image_id) == before
    (error,) = response.json()["detail"]
    return error


def test_numbers_that_decode_to_infinity_or_nan_are_refused_not_a_server_error(served):
    image_id = served.image_id("Toscana 2008/DSCN0038.jpg")
    for body in (b'{"rating": 1e400}', b'{"rating": -1e400}', b'{"rating": NaN}', b'{"rating": Infinity}'):
        error = rating_refused(served, image_id, body)
        assert error["loc"] == ["body", "rating"] and error["msg"] == "Input should be a valid integer", body


def test_request_bodies_are_strictly_typed(served):
    client, image_id = served.client, served.image_id("Toscana 2008/DSCN0038.jpg")
    for body in (b'{"rating": true}', b'{"rating": "5"}', b'{"rating": 4.5}'):
        error = rating_refused(served, image_id, body)
        assert error["loc"] == ["body", "rating"] and error["msg"] == "Input should be a valid integer", body
    (before,) = served.query("SELECT rating FROM images WHERE id = :i", i=image_id)
    assert client.put(f"/api/images/{image_id}/rating", json={"rating": 3.0}).json()["rating"] == 3  # JSON's 3
    client.put(f"/api/images/{image_id}/rating", json={"rating": before.rating})

    group = client.get(f"/api/catalogs/{CATALOG}/groups", params={"limit": 1}).json()["items"][0]
    burst = client.get(f"/api/catalogs/{CATALOG}/bursts", params={"limit": 1}).json()["items"][0]
    for url, body, field, message in [
        (f"/api/groups/{group['id']}/decision", {"reviewed": "yes"}, "reviewed", "a valid boolean"),
        (
            f"/api/groups/{group['id']}/decision",
            {"reviewed": True, "primary_image_id": str(image_id)},
            "primary_image_id",
            "a valid integer",
        ),
        (f"/api/bursts/{burst['id']}/decision", {"reviewed": 1}, "reviewed", "a valid boolean"),
        (f"/api/images/{image_id}/tags", {"name": 5}, "name", "a valid string"),
    ]:
        response = client.post(url, json=body)
        assert response.status_code == 422, (url, body)
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", field] and message in error["msg"], (url, body)
    assert client.get(f"/api/groups/{group['id']}").json()["reviewed"] == group["reviewed"]
    assert client.get(f"/api/bursts/{burst['id']}").json()["reviewed"] == burst["reviewed"]


def test_the_token_is_taken_only_in_the_bearer_scheme(guarded):
    for authorization in (TOKEN, f"Basic {TOKEN}", f"Token {TOKEN}", f"Bearer{TOKEN}"):
        assert guarded.get("/api/catalogs", headers={"Authorization": authorization}).status_code == 401, authorization
    for authorization in (f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER  {TOKEN}"):
        assert guarded.get("/api/catalogs", headers={"Authorization": authorization}).status_code == 200, authorization
