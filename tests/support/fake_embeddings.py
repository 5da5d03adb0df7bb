"""A fake OpenAI-compatible embeddings provider: a real local HTTP server answering
``POST /v1/embeddings`` as OpenAI does (bearer auth, ``input`` a string or a list, ``float``
or ``base64`` encoding, ``dimensions`` only for models that can shorten, the answer's items
carrying their ``index``, errors in OpenAI's envelope). Its vectors are a deterministic
function of the text (a hash, so similar texts are *not* near each other: it tests the wire,
not meaning). It answers the items in reverse order, so a client that ignores ``index``
gets them wrong."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "sk-fake-embeddings-0123456789"
NATIVE_DIMENSIONS = 64
SHORTENING_MODELS = ("text-embedding-3-small", "text-embedding-3-large")


def vector_of(text: str, dimensions: int) -> list[float]:
    raw = b""
    counter = 0
    while len(raw) < dimensions * 4:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    values = [((byte / 255.0) - 0.5) for byte in raw[:dimensions]]
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values]


class FakeEmbeddings:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.answer_dimensions: int | None = None  # a misbehaving server answers another size
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                fake.headers.append(dict(self.headers))
                if self.path != "/v1/embeddings":
                    return self._answer(404, _error("not found", "invalid_request_error"))
                if self.headers.get("authorization") != f"Bearer {API_KEY}":
                    return self._answer(401, _error("Incorrect API key provided", "invalid_request_error", "invalid_api_key"))
                try:
                    request = json.loads(body)
                except ValueError:
                    return self._answer(400, _error("We could not parse the JSON body of your request.", "invalid_request_error"))
                fake.requests.append(request)
                status, answer = fake.embeddings(request)
                self._answer(status, answer)

            def _answer(self, status: int, answer: dict[str, Any]) -> None:
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeEmbeddings:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def embeddings(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        model = request.get("model")
        inputs = request.get("input")
        if not isinstance(model, str) or not model:
            return 400, _error("you must provide a model parameter", "invalid_request_error")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) and i for i in inputs):
            return 400, _error("'$.input' is invalid. Please check the API reference", "invalid_request_error")
        if len(inputs) > 2048:
            return 400, _error("'$.input' must have at most 2048 items", "invalid_request_error")
        dimensions = request.get("dimensions")
        if dimensions is not None and model not in SHORTENING_MODELS:
            return 400, _error("This model does not support specifying dimensions.", "invalid_request_error")
        size = self.answer_dimensions or dimensions or NATIVE_DIMENSIONS
        encoding = request.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return 400, _error("encoding_format must be float or base64", "invalid_request_error")
        data = []
        for index, text in enumerate(inputs):
            vector = vector_of(text, size)
            embedding: Any = vector
            if encoding == "base64":
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(len(text.split()) for text in inputs)
        return 200, {
            "object": "list",
            "data": list(reversed(data)),
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
