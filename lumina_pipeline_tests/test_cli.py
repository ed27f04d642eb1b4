"""`lumina` as a user runs it: embedded PostgreSQL under a fresh LUMINA_HOME, real subprocesses."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from lumina_pipeline.storage.database import make_engine, start_embedded_server
from lumina_pipeline_tests.conftest import lumina_env, stop_embedded_server

EXPORT_FIELDS = [
    ("camera_make", "make"), ("camera_model", "model"), ("orientation", "orientation"),
    ("width", "width"), ("height", "height"), ("display_width", "display_width"),
    ("display_height", "display_height"), ("geohash", "geohash"),
]
VIDEO_EXPORT_FIELDS = [
    "captured_at", "captured_at_source", "capture_offset", "duration_seconds", "latitude", "longitude", "geohash",
    "geohash_6", "width", "height", "display_width", "display_height", "video_codec", "camera_make", "camera_model",
]


@pytest.fixture(scope="module")
def lumina_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    yield home
    stop_embedded_server(home / "pgdata")


def lumina(home, *args: str, check: bool = True, **settings: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "lumina_pipeline.cli", *args]
    result = subprocess.run(command, env=lumina_env(home, **settings), capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_a_command_run_outside_the_folder_of_its_home_says_so_and_makes_none(lumina_home, tmp_path):
    listed = lumina(tmp_path / "elsewhere" / ".lumina", "catalog", "list", check=False)
    assert listed.returncode == 2 and "no Lumina home in" in listed.stderr
    assert not (tmp_path / "elsewhere").exists()
    database = start_embedded_server(lumina_home / "pgdata")  # an external one: a home holds only settings
    lumina(tmp_path / "deployed", "catalog", "list", LUMINA_DATABASE_URL=database)


def test_bad_catalog_requests_get_a_clear_error(lumina_home, tmp_path):
    bad_name = lumina(lumina_home, "catalog", "add", "My Photos!", str(tmp_path), check=False)
    assert bad_name.returncode == 2 and "bad catalog name" in bad_name.stderr
    missing = lumina(lumina_home, "catalog", "add", "trip", str(tmp_path / "nowhere"), check=False)
    assert missing.returncode == 2 and "not a folder" in missing.stderr
    (tmp_path / "Photos Library.photoslibrary" / "originals").mkdir(parents=True)  # moving a file out breaks it
    for folder in ("Photos Library.photoslibrary", "Photos Library.photoslibrary/originals"):
        library = lumina(lumina_home, "catalog", "add", "mac", str(tmp_path / folder), check=False)
        assert library.returncode == 2 and (f"{tmp_path}/Photos Library.photoslibrary is a library that an Apple "
                                            "photo app manages") in library.stderr
    empty = lumina(lumina_home, "search", "trip", " ", check=False)
    assert empty.returncode == 2 and "nothing to look for: give a text" in empty.stderr
    none = lumina(lumina_home, "search", "trip", "a dog", "-k", "0", check=False)
    assert none.returncode == 2 and "a whole number of at least 1, not '0'" in none.stderr


def test_a_batch_that_keeps_failing_ends_the_run_with_its_reason(corpus, tmp_path):
    """A batch step is retried twice; the run's last word names what failed, not only the retries."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for record in [r for r in corpus.files(expected_status="ok") if r["format"] == "JPEG"][:2]:
        shutil.copy(corpus.photos / record["path"], photos)
    in_the_way = tmp_path / "thumbnails"
    in_the_way.write_text("a file where the thumbnails' folder should be")
    try:
        run = lumina(tmp_path / "home", "run", "--photos", str(photos), "blocked", check=False,
                     LUMINA_THUMBNAIL_DIR=str(in_the_way))
        assert run.returncode != 0
        assert re.search(r"batch 00000 of catalog blocked failed \(run [0-9a-f-]+\): Exceeded max_retries of 2 "
                         r"\((FileExistsError|NotADirectoryError): ", run.stderr), run.stderr[-3000:]
    finally:
        stop_embedded_server(tmp_path / "home" / "pgdata")


def test_run_then_export_gives_the_corpus_answers(lumina_home, corpus, tmp_path):
    run = lumina(lumina_home, "run", "--photos", str(corpus.photos), "corpus")
    assert f"catalog corpus: {len(corpus.manifest['files'])} files" in run.stdout
    unread = [line.strip() for line in run.stdout.splitlines() if line.startswith("  _eingang/")]
    assert "_eingang/leer.jpg: empty file (0 bytes)" in unread  # each file that could not be read, and why
    assert len(unread) == int(re.search(r"\((\d+) errors", run.stdout)[1])
    kinds = [stack["kind"] for stack in corpus.manifest["stacks"]]
    assert (f"stacks: {len(kinds)} shots stored as several files ({kinds.count('raw_jpeg')} RAW+JPEG, "
            f"{kinds.count('live_photo')} Live Photo, {kinds.count('with_sidecar')} with sidecars)") in run.stdout
    out = tmp_path / "export.json"
    lumina(lumina_home, "export", "corpus", "--out", str(out))
    document = json.loads(out.read_text(encoding="utf-8"))
    files = {f["path"]: f for f in document["files"]}
    assert document["catalog"] == "corpus" and len(files) == len(corpus.manifest["files"])
    assert sorted(burst["camera"] for burst in document["bursts"]) == ["Canon DIGITAL IXUS", "NIKON E950"]
    assert [burst["reviewed"] for burst in document["bursts"]] == [False, False]
    assert lumina(lumina_home, "bursts", "corpus").stdout.count(" frames, not reviewed)") == 2
    for record in corpus.manifest["files"]:
        exported = files[record["path"]]
        assert exported["status"] in record["acceptable_status"]
        assert exported.get("path_hex") == record.get("path_hex")
        if exported["status"] == "ok":
            assert exported["checksum"] == record["sha256"]
            assert set(exported["hashes"]) == {"dhash", "ahash", "whash", "phash"}
    for expected in corpus.manifest["expected_metadata"]:
        metadata = files[expected["path"]]["metadata"]
        for ours, theirs in EXPORT_FIELDS:
            assert metadata[ours] == expected[theirs], (expected["path"], ours)
        if expected["capture_time"]:
            subsec = f".{expected['capture_time_subsec']}" if expected["capture_time_subsec"] else ""
            assert metadata["captured_at"] == expected["capture_time"] + subsec
            assert metadata["capture_offset"] == expected["capture_time_offset"]
    for path, expected in corpus.manifest["expected_video_metadata"].items():
        metadata = files[path]["metadata"]
        assert set(VIDEO_EXPORT_FIELDS) <= set(metadata) and files[path]["status"] == "ok", path
        assert metadata["duration_seconds"] == pytest.approx(expected["duration_seconds"], abs=0.1), path
        assert (metadata["width"], metadata["height"]) == (expected["width"], expected["height"]), path
        assert metadata["longitude"] == pytest.approx(expected["longitude"], abs=0.001), path
        assert metadata["geohash_6"] == metadata["geohash"][:6] and metadata["video_codec"] == "h264", path
        assert metadata["captured_at_source"] and metadata["capture_offset"], path


def exported_answers(home, name: str) -> dict:
    """`lumina export NAME` less what differs between two catalogs of the same files: their
    names, batches and the ids of their stacks and groups."""
    document = json.loads(lumina(home, "export", name).stdout)

    def without(key: str, *fields: str) -> list[dict]:
        return [{k: v for k, v in record.items() if k not in fields} for record in document[key]]

    return {"files": without("files", "batch", "stack"), "stacks": without("stacks", "id"),
            "duplicate_groups": without("duplicate_groups", "id"), "bursts": without("bursts", "id")}


def test_two_batches_run_at_once_in_two_worker_processes_and_give_the_catalog_of_one_batch(lumina_home, corpus):
    half = -(-len(corpus.manifest["files"]) // 2)
    lumina(lumina_home, "catalog", "add", "halves", str(corpus.photos), "--batch-size", str(half))
    run = lumina(lumina_home, "run", "halves").stdout
    assert "batch 00000 (" in run and "batch 00001 (" in run
    pids = run_processes(lumina_home, "halves")
    workers = pids.pop("batch_job")
    [runner] = set().union(*pids.values())  # the inventory and the regrouping
    assert len(workers) == 2 and runner not in workers
    # "corpus" was read in one batch, by `lumina run` itself: it has imported all a batch uses
    assert len(set().union(*run_processes(lumina_home, "corpus").values())) == 1
    assert exported_answers(lumina_home, "halves") == exported_answers(lumina_home, "corpus")
    lumina(lumina_home, "catalog", "remove", "halves")


def run_processes(home, catalog: str) -> dict[str, set[str]]:
    """The processes that executed the catalog's runs, by job: their `lumina/pid` tags."""
    with dagster_tables(home) as connection:
        rows = connection.execute(text(
            "SELECT run.pipeline_name, pid.value FROM runs run"
            " JOIN run_tags pid ON pid.run_id = run.run_id AND pid.key = 'lumina/pid'"
            " JOIN run_tags catalog ON catalog.run_id = run.run_id AND catalog.value = :catalog"
            " AND catalog.key IN ('dagster/partition', 'dagster/partition/catalog')"
        ), {"catalog": catalog}).all()
    processes: dict[str, set[str]] = {}
    for job, pid in rows:
        processes.setdefault(job, set()).add(pid)
    return processes


@contextmanager
def dagster_tables(home):
    """A connection to the database `lumina` started under `home` (Dagster's tables are there
    too), closed after: an idle one would count as a user of the database for `lumina stop`."""
    engine = make_engine(start_embedded_server(home / "pgdata"))
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def test_runs_are_recorded_in_the_instance_the_ui_reads(lumina_home, corpus):
    with dagster_tables(lumina_home) as connection:
        jobs = connection.execute(text("SELECT DISTINCT pipeline_name FROM runs")).scalars().all()
    assert set(jobs) == {"inventory_job", "batch_job", "catalog_job"}


def test_bulk_accept_shows_the_count_and_asks_before_it_acts(lumina_home, corpus):
    exact = len(corpus.manifest["exact_duplicate_groups"])
    asking = lumina(lumina_home, "review", "accept", "corpus", "--exact", check=False)
    asked = asking.stdout
    assert asking.returncode == 1
    assert asked.startswith(f"{exact} unreviewed groups exact: keeping each suggested keeper leaves ")
    assert "nothing changed (--yes accepts without asking)" in asked
    accepted = lumina(lumina_home, "review", "accept", "corpus", "--exact", "--yes").stdout
    assert f"accepted {exact} groups" in accepted
    ran = lumina(lumina_home, "run", "corpus").stdout
    assert lumina(lumina_home, "review", "accept", "corpus", "--exact").stdout.startswith("0 unreviewed groups")
    removable = json.loads(lumina(lumina_home, "export", "corpus").stdout)["removable"]
    copies = sum(len(group["members"]) - 1 for group in corpus.manifest["exact_duplicate_groups"])
    assert len(removable) == copies
    assert f"leaves {len(removable)} files (" in asked  # the Live Photo's copy, kept with its partner, not counted
    assert f"reviewed away: {len(removable)} files (" in ran and "which `lumina quarantine corpus` moves aside" in ran


def test_a_second_run_finds_nothing_new_and_starts_no_run(lumina_home, corpus):
    def runs() -> list[str]:
        with dagster_tables(lumina_home) as connection:
            return connection.execute(text("SELECT pipeline_name FROM runs")).scalars().all()

    before = runs()
    again = lumina(lumina_home, "run", "corpus").stdout  # after people's decisions (bulk accept), which change nothing
    assert f"inventory: {len(corpus.manifest['files'])} files, 0 new, 0 changed, 0 deleted" in again
    assert "groupings: nothing they read changed" in again
    assert sorted(runs()) == sorted(before)


def test_a_typo_is_one_line_and_exit_2_with_no_run_and_no_partition(lumina_home, corpus):
    def runs_and_partitions():
        with dagster_tables(lumina_home) as connection:
            runs = connection.execute(text("SELECT count(*) FROM runs")).scalar()
            return runs, connection.execute(text("SELECT partition FROM dynamic_partitions")).scalars().all()

    before = runs_and_partitions()
    typo = lumina(lumina_home, "run", "corpsu", check=False)
    assert typo.returncode == 2 and typo.stdout == ""
    assert typo.stderr == "lumina: no catalog named 'corpsu' (see `lumina catalog list`)\n"
    assert runs_and_partitions() == before


def test_output_speaks_in_plurals_and_sizes_and_says_what_to_paste_next(lumina_home, corpus):
    again = lumina(lumina_home, "run", "corpus").stdout
    assert "1 exact groups" not in again and "reclaimable" in again
    assert re.search(r"\d+(\.\d)? (KB|MB|GB) reclaimable once reviewed", again)
    assert re.search(r"next: `\S*lumina duplicates corpus`", again)


def test_stop_stops_the_embedded_database_and_the_next_command_starts_it(lumina_home, corpus):
    engine = make_engine(start_embedded_server(lumina_home / "pgdata"))
    with engine.connect():  # as `lumina serve` or a run
        in_use = lumina(lumina_home, "stop", check=False)
    engine.dispose()
    assert in_use.returncode == 2 and "in use (1 connection" in in_use.stderr
    assert lumina(lumina_home, "stop").stdout.startswith("stopped the database")
    assert lumina(lumina_home, "stop").stdout.startswith("no database running")
    assert lumina(lumina_home, "catalog", "list").stdout.startswith("corpus\t")


def test_a_command_killed_while_pgserver_rewrote_its_process_list_leaves_no_command_failing(lumina_home):
    handles = lumina_home / "pgdata" / ".handle_pids.json"
    handles.write_text("")  # as `kill -9` mid-write leaves it
    lumina(lumina_home, "catalog", "list")
    assert isinstance(json.loads(handles.read_text()), list)


@pytest.mark.parametrize("folder", ["My Projects", "Mom's,100%+1"])
def test_a_home_in_a_folder_whose_name_holds_spaces_or_signs_catalogs(corpus, tmp_path, folder):
    """As in a checkout under "My Projects": the embedded database starts, runs run."""
    home, photos = tmp_path / folder / ".lumina", tmp_path / "My Photos"
    photos.mkdir()
    for name in ("landscape_2.jpg", "landscape_8.jpg"):
        shutil.copy2(corpus.photos / "Orientierung" / name, photos / name)
    try:
        ran = lumina(home, "run", "--photos", str(photos)).stdout
    finally:
        stop_embedded_server(home / "pgdata")
    assert "catalog my-photos: 2 files (2 ok)" in ran


def test_a_home_kept_inside_the_photos_is_never_cataloged_nor_a_library_of_apples_photos(corpus, tmp_path):
    """Neither the home's thumbnails (JPEGs) nor its database, whose files change with every
    command; nor a library that Apple's Photos manages, which is said to be left out."""
    photos, library = tmp_path / "Pictures", tmp_path / "Pictures" / "Photos Library.photoslibrary" / "originals"
    library.mkdir(parents=True)
    for name in ("landscape_2.jpg", "landscape_8.jpg"):
        shutil.copy2(corpus.photos / "Orientierung" / name, photos / name)
    shutil.copy2(corpus.photos / "Orientierung" / "landscape_2.jpg", library / "0A1B.jpeg")
    home = photos / ".lumina"
    try:
        first = lumina(home, "run", "--photos", str(photos))
        again = lumina(home, "run", "--photos", str(photos)).stdout
    finally:
        stop_embedded_server(home / "pgdata")
    assert "catalog pictures: 2 files (2 ok)" in first.stdout and any((home / "thumbnails").rglob("*.jpg"))
    assert f"left out {photos}/Photos Library.photoslibrary: a library that an Apple photo app manages" in first.stderr
    assert "inventory: 2 files, 0 new, 0 changed, 0 deleted" in again


def test_a_photo_with_two_names_is_cataloged_once_and_no_duplicate_of_itself(lumina_home, corpus, tmp_path):
    """A hard link, as a script filing photos by date makes: quarantining one name would free nothing."""
    photos = tmp_path / "Linked"
    (photos / "2024-06-01").mkdir(parents=True)
    shutil.copy2(corpus.photos / "Orientierung" / "landscape_2.jpg", photos / "landscape_2.jpg")
    os.link(photos / "landscape_2.jpg", photos / "2024-06-01" / "landscape_2.jpg")
    shutil.copy2(photos / "landscape_2.jpg", photos / "landscape_2 copy.jpg")  # a copy is a duplicate
    ran = lumina(lumina_home, "run", "--photos", str(photos)).stdout
    os.link(photos / "landscape_2.jpg", photos / "0 first by name.jpg")  # the file keeps the name it is listed by
    again = lumina(lumina_home, "run", "linked").stdout
    lumina(lumina_home, "catalog", "remove", "linked")
    assert "inventory: 2 files, 2 new, 0 changed, 0 deleted (1 hard link to files listed under another name)" in ran
    assert "duplicates: 1 exact group, 0 near-duplicate groups, 2 files in groups" in ran
    assert "inventory: 2 files, 0 new, 0 changed, 0 deleted (2 hard links to files listed under another name)" in again


def test_names_that_are_not_utf8_or_hold_control_characters_are_shown_escaped_on_a_strict_terminal(
        lumina_home, corpus, tmp_path):
    """A desktop's UTF-8 locale encodes output strictly: a Latin-1 name printed as Python decodes
    it would end the command with a traceback, an escape sequence in a name would clear the screen."""
    photos = tmp_path / "Names"
    (photos / "Backup").mkdir(parents=True)
    shutil.copy2(corpus.photos / "Orientierung" / "landscape_2.jpg", photos / "landscape_2.jpg")
    for name in (b"Gr\xfc\xdfe.jpg", b"\x1b[2Jcleared.jpg"):
        shutil.copy2(photos / "landscape_2.jpg", os.path.join(os.fsencode(photos / "Backup"), name))
    strict = {"PYTHONIOENCODING": "utf-8:strict"}
    lumina(lumina_home, "run", "--photos", str(photos), **strict)
    lumina(lumina_home, "review", "accept", "names", "--exact", "--yes", **strict)
    listed = [lumina(lumina_home, *command, "names", **strict).stdout
              for command in (["duplicates"], ["quarantine", "--dry-run"])]
    acted = [lumina(lumina_home, "quarantine", "names", **strict).stdout]
    assert "names\t3 files (2 in quarantine)\t" in lumina(lumina_home, "catalog", "list").stdout
    acted.append(lumina(lumina_home, "undo", "names", **strict).stdout)
    lumina(lumina_home, "catalog", "remove", "names", "--yes")
    for output in listed:
        assert "Backup/Gr\\xfc\\xdfe.jpg" in output and "Backup/\\x1b[2Jcleared.jpg" in output, output
    assert acted[0].startswith("moved 2 files") and acted[1].startswith("put back 2 files")
    assert not any("\x1b" in output for output in listed + acted)


def test_a_home_whose_path_the_embedded_database_cannot_start_in_is_refused_with_why(tmp_path):
    refused = lumina(tmp_path / "$HOME" / ".lumina", "catalog", "add", "trip", str(tmp_path), check=False)
    assert refused.returncode == 2 and "whose path holds $: set LUMINA_HOME to a folder without" in refused.stderr


def test_a_catalog_is_sized_from_a_count_of_its_files(lumina_home, corpus):
    added = lumina(lumina_home, "catalog", "add", "sized", str(corpus.photos)).stdout
    assert f"(about {len(corpus.manifest['files'])} files, batches of 500)" in added
    chosen = lumina(lumina_home, "catalog", "add", "chosen", str(corpus.photos), "--batch-size", "40").stdout
    assert "batches of 40" in chosen
    for name in ("sized", "chosen"):
        lumina(lumina_home, "catalog", "remove", name)


def test_run_with_photos_runs_the_catalog_that_holds_the_folder_whatever_its_name(lumina_home, tmp_path):
    folder = tmp_path / "Été"
    folder.mkdir()
    lumina(lumina_home, "catalog", "add", "t", str(folder))  # the name an earlier Lumina gave it
    assert "catalog t: 0 files (none in its folders: are they the right ones?)" in lumina(
        lumina_home, "run", "--photos", str(folder)).stdout
    assert lumina(lumina_home, "catalog", "list").stdout.count(str(folder)) == 1
    lumina(lumina_home, "catalog", "remove", "t")


def test_the_ui_and_the_review_page_refuse_a_port_in_use_before_starting(lumina_home):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in ("dev", "serve"):
            refused = lumina(lumina_home, command, "--port", str(port), check=False)
            assert refused.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in refused.stderr, command


def test_catalogs_are_listed_and_removed_asking_first_when_people_decided_in_them(lumina_home, corpus):
    listed = f"corpus\t{len(corpus.manifest['files'])} files"
    assert lumina(lumina_home, "catalog", "list").stdout.startswith(listed)
    lumina(lumina_home, "review", "accept", "corpus", "--exact", "--yes")  # if no test before did
    refused = lumina(lumina_home, "catalog", "remove", "corpus", check=False)
    exact = len(corpus.manifest["exact_duplicate_groups"])
    assert refused.returncode == 1 and f"holds {exact} decisions given by people" in refused.stdout
    assert "nothing changed (--yes removes it without asking)" in refused.stdout
    assert lumina(lumina_home, "catalog", "list").stdout.startswith(listed)
    lumina(lumina_home, "catalog", "remove", "corpus", "--yes")
    assert lumina(lumina_home, "catalog", "list").stdout == ""


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    reading, writing = os.pipe()
    os.close(reading)  # as `| head -1` once it has its line
    try:
        ended = subprocess.run([sys.executable, "-m", "lumina_pipeline.cli", "stop"], stdout=writing,
                               stderr=subprocess.PIPE, text=True, env=lumina_env(tmp_path), timeout=60)
    finally:
        os.close(writing)
    assert (ended.returncode, ended.stderr) == (1, "")


def test_a_run_tries_again_the_files_that_could_not_be_read(lumina_home, corpus, tmp_path):
    """As a file gone while its batch read it (a share that dropped), back since with its size and date."""
    photos = tmp_path / "Share"
    shutil.copytree(corpus.photos / "Toscana 2008", photos)
    lumina(lumina_home, "run", "--photos", str(photos))
    with dagster_tables(lumina_home) as connection, connection.begin():
        connection.execute(text("""
            UPDATE images SET status = 'error', error = 'cannot read file: No such file or directory'
            WHERE path = 'DSCN0010.jpg' AND catalog_id = (SELECT id FROM catalogs WHERE name = 'share')"""))
    again = lumina(lumina_home, "run", "share").stdout
    lumina(lumina_home, "catalog", "remove", "share")
    assert "inventory: 6 files, 0 new, 0 changed, 0 deleted" in again
    assert "1 file read (1 ok, 0 errors" in again


def test_a_drive_unplugged_keeps_its_files_though_a_mac_left_a_file_at_its_mount_point(lumina_home, corpus, tmp_path):
    drive = tmp_path / "Drive"
    shutil.copytree(corpus.photos / "Toscana 2008", drive)
    lumina(lumina_home, "run", "--photos", str(drive))
    drive.rename(tmp_path / "unplugged")
    drive.mkdir()
    (drive / ".DS_Store").write_bytes(b"\0")  # what Finder writes into the empty mount point
    away = lumina(lumina_home, "run", "drive")
    drive.rename(tmp_path / "mount point")
    (tmp_path / "unplugged").rename(drive)
    back = lumina(lumina_home, "run", "drive")
    lumina(lumina_home, "catalog", "remove", "drive")
    assert "inventory: 1 file, 0 new, 1 changed, 0 deleted" in away.stdout  # the folder's .DS_Store, another one
    assert f"cannot list {drive}, or it is empty (a drive not mounted?): its files are kept" in away.stderr
    assert "inventory: 6 files, 0 new, 1 changed, 0 deleted" in back.stdout
    assert all("catalog drive: 6 files (2 ignored, 4 ok)" in run.stdout for run in (away, back))
