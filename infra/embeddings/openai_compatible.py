"""A client of an OpenAI-compatible ``POST {base}/embeddings`` endpoint (OpenAI itself, Azure
behind a gateway, vLLM, Ollama, text-embeddings-inference …) for deployments that embed
with a hosted or shared model.

The API key is sent as a bearer and kept out of ``repr``, errors and logs: a failure names
the endpoint's status, never the request."""

from __future__ import annotations

import re
from collections.abc import Sequence

import httpx

from application.errors import Unavailable

# OpenAI accepts up to 2,048 inputs a request; smaller requests keep one failure cheap.
BATCH = 128


class EmbeddingsUnavailable(Unavailable):
    """The embeddings endpoint could not be reached or refused the request."""


class OpenAICompatibleEmbedder:
    """``dimensions`` is the size the model answers with (the index's collections are created
    with it before the first vector arrives); an answer of another size is refused."""

    def __init__(self, base_url: str, model: str, dimensions: int, api_key: str = "", timeout: float = 60.0) -> None:
        if not base_url or not model or dimensions < 1:
            raise ValueError("an embeddings endpoint needs its base URL, model and dimensions")
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        self._api_key = api_key
        self._timeout = timeout
        self.dimensions = dimensions
        self.name = "openai-" + re.sub(r"[^a-z0-9.-]+", "-", model.lower()).strip("-")
        # Only models that can shorten their vectors accept ``dimensions`` (OpenAI's
        # text-embedding-3-*); others (ada-002, most self-hosted servers) refuse the field.
        self._send_dimensions = model.startswith("text-embedding-3")

    def __repr__(self) -> str:
        return f"OpenAICompatibleEmbedder(url={self._url!r}, model={self._model!r})"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            vectors.extend(self._request(list(texts[start : start + BATCH])))
        return vectors

    def _request(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        body: dict[str, object] = {"model": self._model, "input": texts, "encoding_format": "float"}
        if self._send_dimensions:
            body["dimensions"] = self.dimensions
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            with httpx.Client(timeout=self._timeout, follow_redirects=False, trust_env=False) as client:
                response = client.post(self._url, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise EmbeddingsUnavailable(f"{self._url}: {type(error).__name__}") from None
        if response.status_code != 200:
            raise EmbeddingsUnavailable(f"{self._url} answered {response.status_code}")
        try:
            data = response.json()["data"]
            # The answer's order is given by ``index``, not by position in the list.
            ordered = sorted(data, key=lambda item: item["index"])
            vectors = [[float(x) for x in item["embedding"]] for item in ordered]
        except (ValueError, KeyError, TypeError) as error:
            raise EmbeddingsUnavailable(f"{self._url} answered something that is not an embeddings list") from error
        if len(vectors) != len(texts):
            raise EmbeddingsUnavailable(f"{self._url} answered {len(vectors)} vectors for {len(texts)} texts")
        if any(len(v) != self.dimensions for v in vectors):
            raise EmbeddingsUnavailable(
                f"{self._url} answered vectors that are not {self.dimensions} long (AGENTRY_EMBEDDINGS_DIMENSIONS)"
            )
        return vectors
