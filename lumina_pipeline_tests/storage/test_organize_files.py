import json

import pytest
import tzlocal
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.storage.catalogs import add_catalog
from lumina_pipeline.storage.organize import organize_files


@pytest.fixture
def in_berlin(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    tzlocal.reload_localzone()
    yield
    monkeypatch.undo()
    tzlocal.reload_localzone()


def new_year(engine, tmp_path, name: str) -> dict[bytes, str]:
    """The capture times organize reads of a video and a photo a minute apart around midnight in
    Berlin, as a phone records them."""
    dates = {
        b"VID_20230101_003000.mp4": ("video", {"captured_at": "2022-12-31T23:30:00", "offset": "+00:00",
                                               "captured_at_source": "creation_time"}),
        b"IMG_20230101_002950.jpg": ("image", {"captured_at": "2023-01-01T00:29:50", "offset": "+01:00",
                                               "captured_at_source": "DateTimeOriginal"}),
    }
    with Session(engine) as session, session.begin():
        catalog = add_catalog(session, name, [str(tmp_path)]).id
        session.execute(text("""
            INSERT INTO images (catalog_id, source_root, path, kind, size_bytes, mtime_ns, batch, status, dates)
            VALUES (:c, :root, :path, :kind, 1, 1, '00000', 'ok', CAST(:dates AS jsonb))"""),
            [{"c": catalog, "root": str(tmp_path), "path": path, "kind": kind, "dates": json.dumps(when)}
             for path, (kind, when) in dates.items()])
        files = organize_files(session.connection(), catalog)
    return dict(zip(files["path"], files["captured_at"], strict=True))


def test_a_videos_utc_time_is_taken_to_the_machines_time_zone_and_a_photos_clock_is_kept(engine, tmp_path, in_berlin):
    assert new_year(engine, tmp_path, "new-year") == {
        b"VID_20230101_003000.mp4": "2023-01-01T00:30:00", b"IMG_20230101_002950.jpg": "2023-01-01T00:29:50"}


def test_on_a_machine_whose_time_zone_has_no_name_a_video_keeps_its_utc_time(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(tzlocal, "get_localzone_name", lambda: None)  # /etc/localtime a file, not a link
    assert new_year(engine, tmp_path, "utc") == {
        b"VID_20230101_003000.mp4": "2022-12-31T23:30:00", b"IMG_20230101_002950.jpg": "2023-01-01T00:29:50"}
