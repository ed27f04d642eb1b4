"""A stand-in Ollama server: a real HTTP server on loopback speaking the part of Ollama's API
Lumina uses (`GET /api/tags`, `POST /api/chat`), answering from a script instead of a model.

No vision model can be downloaded here, so tests and benchmarks run the real `ollama` client
against this. Answers are keyed by the image sent (the SHA-256 of its bytes): a test sets the
caption of a photo by its thumbnail, and failures to give before answering (`TIMEOUT`: no
answer until after the client gave up, `SERVER_ERROR`: a 500, `MALFORMED`: a cut-off JSON
answer). Every request is recorded.
"""

import base64
import hashlib
import json
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TIMEOUT, SERVER_ERROR, MALFORMED = "timeout", "500", "malformed"


@dataclass
class Request:
    model: str
    image: str  # SHA-256 of the image bytes, hex
    format: dict | str | None
    prompt: str


@dataclass
class StandInOllama:
    models: set[str] = field(default_factory=lambda: {"moondream:latest"})
    delay_seconds: float = 0.0  # per answered request: the time a model would take
    hang_seconds: float = 2.0  # how long a TIMEOUT keeps the client waiting
    captions: dict[str, dict] = field(default_factory=dict)  # image SHA-256 -> {"description", "tags"}
    # image SHA-256 -> the failures to give, in order
    failures: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    requests: list[Request] = field(default_factory=list)
    most_at_once: int = 0  # the most chat requests being answered at the same time
    seconds_answering: float = 0.0  # summed over answered chat requests, from receipt to reply

    def __post_init__(self):
        self._lock = threading.Lock()
        self._at_once = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "StandInOllama":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def caption_for(self, model: str, image: str) -> dict:
        """The scripted caption, or one made from the image's key and the model's name, so
        that every photo has its own and two models say different things."""
        return self.captions.get(image) or {"description": f"A photo numbered {image[:8]} as {model} sees it.",
                                            "tags": ["photo", f"seen by {model.split(':')[0]}"]}

    def chat(self, body: dict) -> tuple[int, dict | str]:
        started = time.perf_counter()
        model = body.get("model", "")
        if model not in self.models and f"{model}:latest" not in self.models:
            return 404, {"error": f'model "{model}" not found, try pulling it first'}
        message = body["messages"][-1]
        image = hashlib.sha256(base64.b64decode(message["images"][0])).hexdigest()
        with self._lock:
            self.requests.append(Request(model, image, body.get("format"), message["content"]))
            failure = self.failures[image].pop(0) if self.failures[image] else None
            self._at_once += 1
            self.most_at_once = max(self.most_at_once, self._at_once)
        try:
            if failure == TIMEOUT:
                time.sleep(self.hang_seconds)
            if failure == SERVER_ERROR:
                return 500, {"error": "llama runner process has terminated: signal: killed"}
            time.sleep(self.delay_seconds)
            content = json.dumps(self.caption_for(model, image))
            if failure == MALFORMED:
                content = content[: len(content) // 2]  # as a model that ran out of tokens mid-answer
            return 200, {"model": model, "created_at": "2026-01-01T00:00:00Z", "done": True, "done_reason": "stop",
                         "message": {"role": "assistant", "content": content}}
        finally:
            with self._lock:
                self._at_once -= 1
                if failure is None:
                    self.seconds_answering += time.perf_counter() - started

    def tags(self) -> dict:
        return {"models": [{"name": name, "model": name, "size": 1, "digest": hashlib.sha256(name.encode()).hexdigest()}
                           for name in sorted(self.models)]}


def _handler(server: StandInOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Ollama's own server

        def setup(self):
            super().setup()
            # Go's servers (Ollama's) send without Nagle's delay; Python's would hold the body
            # back until the client acknowledged the headers, tens of ms per request
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self):
            if self.path == "/api/tags":
                self._reply(200, server.tags())
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/api/chat":
                self._reply(*server.chat(body))
            else:
                self._reply(404, {"error": "not found"})

        def _reply(self, status: int, document: dict) -> None:
            data = json.dumps(document).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (TIMEOUT)
                pass

        def log_message(self, format, *args):  # quiet: tests read `requests` instead
            pass

    return Handler
