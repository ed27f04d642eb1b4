"""A video's metadata + poster frame (decode_video: container tags, its first picture,
reduced and turned upright) against a bare PyAV open + one keyframe decode of the same file
(target <= 2x), per video of the photo corpus and of a generated 1080p clip. The whole
analysis of the file (streamed checksum, then hashes, quality, thumbnail and the model's
input from the poster) is printed beside it, against the same baseline."""

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from lumina_pipeline.analysis.photos import analyze_file
from lumina_pipeline.analysis.videos import decode_video
from lumina_pipeline_tests.conftest import CORPUS

ROUNDS = 30  # median of as many alternating runs of each: the corpus's clips take milliseconds


def bare_keyframe(path: str) -> None:
    """The floor: open, demux to the first keyframe packet, decode it (and drain the decoder,
    which holds a frame back when the stream has B-frames)."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size and packet.is_keyframe:
                if not (packet.decode() or stream.decode(None)):
                    raise RuntimeError(f"no frame from the first keyframe of {path}")
                return


def metadata_and_poster(path: str) -> None:
    with open(path, "rb") as file:  # as analyze_file gives it: the open file object
        decode_video(file)


def whole_analysis(path: str) -> None:
    if analyze_file(os.fsencode(path), "video", model_inputs=True)[0] != "ok":
        raise RuntimeError(f"{path} did not analyze as ok")


def median_seconds(functions: list[Callable[[str], None]], path: str) -> list[float]:
    for function in functions:  # warm: file cache, decoder tables
        function(path)
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(ROUNDS):
        for index, function in enumerate(functions):
            started = time.perf_counter()
            function(path)
            times[index].append(time.perf_counter() - started)
    return [float(np.median(samples)) for samples in times]


def generated_clip(path: Path, seconds: int = 5, fps: int = 30) -> Path:
    """1920 x 1080 H.264, a keyframe each second, moving content (so the poster is at 1 s)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "x264-params": "keyint=30"})
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        y, x = np.mgrid[0:1080, 0:1920]
        for index in range(seconds * fps):
            pixels = np.stack([(x + 8 * index) % 256, (y + 4 * index) % 256, (x + y) % 256], axis=-1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels.astype(np.uint8), format="rgb24")))
        container.mux(stream.encode())
    return path


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="lumina-bench-videos-") as folder:
        root = Path(folder)
        videos: list[tuple[str, Path]] = []
        if (CORPUS / "prepare.py").exists():
            prepare = [sys.executable, str(CORPUS / "prepare.py"), str(root / "corpus")]
            subprocess.run(prepare, check=True, capture_output=True)
            manifest = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
            videos += [(name, root / "corpus" / "photos" / name) for name in manifest["expected_video_metadata"]]
        else:
            print(f"\n(no photo corpus at {CORPUS}: the generated clip only)")
        videos.append(("generated 1920x1080 H.264, 5 s", generated_clip(root / "generated.mp4")))
        print(f"\n== per video: metadata + poster frame against a bare PyAV open + one keyframe decode, "
              f"median of {ROUNDS} (target <= 2x) ==")
        worst = 0.0
        for name, path in videos:
            bare, ours, whole = median_seconds([bare_keyframe, metadata_and_poster, whole_analysis], str(path))
            worst = max(worst, ours / bare)
            print(f"  {name:44s} bare {bare * 1e3:6.1f} ms, metadata + poster {ours * 1e3:6.1f} ms "
                  f"= {ours / bare:.2f}x; whole analysis {whole * 1e3:6.1f} ms = {whole / bare:.2f}x")
        print(f"  worst metadata + poster / bare = {worst:.2f}x (target <= 2x)")
