"""The OpenAI-compatible embeddings client against a local server speaking the real
``/v1/embeddings`` wire (the official openai SDK reads the same server to prove it), and the
vector projection and search running on it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from infra.embeddings import EmbeddingsUnavailable, OpenAICompatibleEmbedder
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.settings import Settings, SettingsError
from infra.vector_index import QdrantVectorIndex
from projections.runner import create_engine
from projections.vectors import EmbeddedSearch, VectorProjection
from tests.support.fake_embeddings import API_KEY, NATIVE_DIMENSIONS, FakeEmbeddings, vector_of
from tests.support.vector_source import COLLECTION, agent, agent_descriptions


@pytest.fixture
def provider() -> Iterator[FakeEmbeddings]:
    fake = FakeEmbeddings().start()
    yield fake
    fake.stop()


def close(a: list[float], b: list[float]) -> bool:
    return all(abs(x - y) < 1e-6 for x, y in zip(a, b, strict=True))


def test_the_client_sends_openai_s_request_and_reads_the_answer_by_index(provider: FakeEmbeddings) -> None:
    texts = [f"text number {n}" for n in range(300)]  # more than one request's worth
    embedder = OpenAICompatibleEmbedder(provider.base_url, "text-embedding-3-small", 256, API_KEY)
    vectors = embedder.embed(texts)
    assert [len(v) for v in vectors] == [256] * 300
    assert all(close(v, vector_of(t, 256)) for v, t in zip(vectors, texts, strict=True))
    assert [len(r["input"]) for r in provider.requests] == [128, 128, 44]
    assert provider.requests[0]["model"] == "text-embedding-3-small"
    assert provider.requests[0]["dimensions"] == 256
    assert provider.requests[0]["encoding_format"] == "float"
    assert provider.headers[0]["Authorization"] == f"Bearer {API_KEY}"
    assert embedder.name == "openai-text-embedding-3-small"


def test_a_model_that_cannot_shorten_is_not_sent_dimensions(provider: FakeEmbeddings) -> None:
    embedder = OpenAICompatibleEmbedder(provider.base_url, "nomic-embed-text", NATIVE_DIMENSIONS, API_KEY)
    assert close(embedder.embed(["hello"])[0], vector_of("hello", NATIVE_DIMENSIONS))
    assert "dimensions" not in provider.requests[0]


def test_the_official_sdk_reads_the_same_server_and_gets_the_same_vectors(provider: FakeEmbeddings) -> None:
    client = openai.OpenAI(base_url=provider.base_url, api_key=API_KEY, max_retries=0)
    texts = ["alpha", "beta", "gamma"]
    answer = client.embeddings.create(model="text-embedding-3-small", input=texts, dimensions=32)
    ours = OpenAICompatibleEmbedder(provider.base_url, "text-embedding-3-small", 32, API_KEY).embed(texts)
    assert [item.index for item in answer.data] == [2, 1, 0]
    by_index = [item.embedding for item in sorted(answer.data, key=lambda item: item.index)]
    assert all(close(a, b) for a, b in zip(by_index, ours, strict=True))


def test_failures_name_the_endpoint_never_the_key(provider: FakeEmbeddings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = OpenAICompatibleEmbedder(provider.base_url, "text-embedding-3-small", 32, "sk-wrong-key-abcdef")
    with pytest.raises(EmbeddingsUnavailable, match="answered 401") as refused:
        wrong.embed(["x"])
    assert "sk-wrong" not in str(refused.value) and "sk-wrong" not in repr(wrong)
    assert "sk-wrong" not in caplog.text
    provider.answer_dimensions = 16
    with pytest.raises(EmbeddingsUnavailable, match="not 32 long"):
        OpenAICompatibleEmbedder(provider.base_url, "text-embedding-3-small", 32, API_KEY).embed(["x"])
    unreachable = OpenAICompatibleEmbedder("http://127.0.0.1:9/v1", "m", 8, API_KEY)
    with pytest.raises(EmbeddingsUnavailable, match="ConnectError"):
        unreachable.embed(["x"])


def test_settings_need_the_model_and_size_and_keep_the_key_out_of_repr() -> None:
    with pytest.raises(SettingsError, match="AGENTRY_EMBEDDINGS_DIMENSIONS"):
        Settings(embeddings_url="http://127.0.0.1:1/v1", embeddings_model="m")
    settings = Settings(embeddings_url="http://x/v1", embeddings_model="m", embeddings_dimensions=8, embeddings_api_key="sk-secret-value")
    assert "sk-secret-value" not in repr(settings)


def test_the_projection_and_search_run_on_the_endpoint(provider: FakeEmbeddings, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    store = EventsourcingEventStore(event_store_env(settings))
    engine = create_engine(settings.read_model_url)
    embedder = OpenAICompatibleEmbedder(provider.base_url, "text-embedding-3-small", 48, API_KEY)
    index = QdrantVectorIndex(settings.vector_dir, embedder.name, embedder.dimensions)
    try:
        projection = VectorProjection(engine, store, index, embedder, [agent_descriptions])
        projection.setup()
        for n in range(5):
            store.save(agent(f"agent_{n}", "t1", f"a{n}", f"description {n}"))
        projection.catch_up()
        assert index.collections() == [f"{COLLECTION}__openai-text-embedding-3-small-48"]
        # The fake's vectors are a hash of the text: the same text finds itself first.
        hits = EmbeddedSearch(index, embedder).search(COLLECTION, "description 3", 2, {"tenant_id": "t1"})
        assert hits[0].payload["name"] == "a3" and hits[0].score == pytest.approx(1.0)
    finally:
        index.close()
        store.close()
        engine.dispose()
