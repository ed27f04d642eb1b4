"""`lumina run` and `lumina search` with captions, as a user runs them: first without an Ollama
server, then with one (the stand-in), in real subprocesses under a fresh LUMINA_HOME."""

import hashlib
import json
import shutil
import subprocess
import sys

from lumina_pipeline_tests.conftest import lumina_env, stop_embedded_server
from lumina_pipeline_tests.ollama_server import StandInOllama

PHOTOS = {
    "lighthouse.jpg": ("Reisen/Leuchtturm 🌅 Abend.jpg",
                       {"description": "A red and white lighthouse at dusk.", "tags": ["lighthouse"]}),
    "party.jpg": ("Alte Kameras/Canon_DIGITAL_IXUS_400.jpg",
                  {"description": "Grandma blowing out the candles on her birthday cake.", "tags": ["birthday cake"]}),
}


def lumina(home, *args: str, **variables: str) -> str:
    result = subprocess.run([sys.executable, "-m", "lumina_pipeline.cli", *args], env=lumina_env(home, **variables),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_lumina_run_captions_photos_once_a_server_is_set_and_search_finds_them_by_their_captions(corpus, tmp_path):
    home, folder = tmp_path / "home", tmp_path / "photos"
    folder.mkdir()
    for name, (original, _) in PHOTOS.items():
        shutil.copy(corpus.photos / original, folder / name)
    try:
        first = lumina(home, "run", "--photos", str(folder), "party")
        assert "captions: off (set LUMINA_OLLAMA_URL" in first
        with StandInOllama() as server:
            for name, (_, caption) in PHOTOS.items():  # thumbnails are named by the file's checksum
                checksum = hashlib.sha256((folder / name).read_bytes()).hexdigest()
                thumbnail = home / "thumbnails" / "party" / checksum[:2] / f"{checksum}.jpg"
                server.captions[hashlib.sha256(thumbnail.read_bytes()).hexdigest()] = caption

            second = lumina(home, "run", "party", LUMINA_OLLAMA_URL=server.url)
            third = lumina(home, "run", "party", LUMINA_OLLAMA_URL=server.url)

        assert "captions 00000: 2 photos by moondream, 2 asked, 0 errors" in second
        assert "captions 00000" not in third and len(server.requests) == 2  # nothing left to ask
        found = json.loads(lumina(home, "search", "party", "a birthday cake with candles", "--json"))
        assert found[0]["path"] == "party.jpg"
        assert found[0]["reason"].startswith("description ") and "birthday cake" in found[0]["reason"]
    finally:
        if (home / "pgdata").exists():
            stop_embedded_server(home / "pgdata")
