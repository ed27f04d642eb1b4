import hashlib
import os
import threading

from lumina_pipeline.analysis.verification import reverify


def test_reverify_tells_each_outcome_and_never_waits_on_a_fifo_swapped_in(tmp_path):
    files = {name: tmp_path / f"{name}.jpg" for name in ("same", "edited", "corrupted", "gone", "fifo", "folder")}
    for path in files.values():
        path.write_bytes(b"photo")
    recorded = {name: (os.stat(path).st_size, os.stat(path).st_mtime_ns) for name, path in files.items()}
    files["edited"].write_bytes(b"photo, edited")
    files["corrupted"].write_bytes(b"PHOTO")  # same size
    os.utime(files["corrupted"], ns=(recorded["corrupted"][1], recorded["corrupted"][1]))
    for name in ("gone", "fifo", "folder"):
        files[name].unlink()
    os.mkfifo(files["fifo"])  # nobody ever writes to it: a plain open would wait for ever
    files["folder"].mkdir()
    outcomes = []
    reading = threading.Thread(target=lambda: outcomes.extend(reverify(
        [os.fsencode(path) for path in files.values()], [size for size, _ in recorded.values()],
        [mtime for _, mtime in recorded.values()], [hashlib.sha256(b"photo").hexdigest()] * len(files))), daemon=True)
    reading.start()
    reading.join(timeout=30)
    assert outcomes == ["same", "edited", "corrupted", "unreadable", "edited", "unreadable"]
