"""Embedders (the ``Embedder`` port): the local MiniLM model the embedded server uses by
default, and a client of any OpenAI-compatible ``/v1/embeddings`` endpoint."""

from infra.embeddings.local import MiniLMEmbedder
from infra.embeddings.openai_compatible import EmbeddingsUnavailable, OpenAICompatibleEmbedder

__all__ = ["EmbeddingsUnavailable", "MiniLMEmbedder", "OpenAICompatibleEmbedder"]
