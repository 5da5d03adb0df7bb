"""The vector sources the vector projection runs: each turns one event into the texts to
index and the points to drop (``VectorChange``). Add a source here with one import and
one list entry; its module lives beside this one (memory_vectors.py, knowledge_vectors.py)."""

from __future__ import annotations

from application.ports import SecretCipher
from projections.knowledge_vectors import knowledge_vectors
from projections.memory_vectors import MemoryVectors
from projections.vectors import VectorSource


def all_vector_sources(cipher: SecretCipher) -> list[VectorSource]:
    """``cipher`` opens sealed text (memories' content) at the moment it is indexed."""
    sources: list[VectorSource] = [MemoryVectors(cipher), knowledge_vectors]
    return sources
