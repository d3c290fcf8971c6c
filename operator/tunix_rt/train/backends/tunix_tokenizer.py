"""The tokenizer of a Tunix trial, wrapped as Tunix's samplers expect it.

The built-in byte tokenizer (``train/tokenizer.py``: its ids lie inside every Gemma
vocabulary, and gemma3-tiny's vocabulary is exactly its size) unless ``model.tokenizer``
names a SentencePiece model, as a real Gemma checkpoint needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunix_rt.train import tokenizer as byte_tokenizer
from tunix_rt.train.backends.tunix_weights import fetch


class ByteTokenizer:
    """The built-in byte tokenizer with the interface Tunix's samplers expect."""

    vocab_size = byte_tokenizer.VOCAB_SIZE

    def encode(self, text: str, **_: Any) -> list[int]:
        return byte_tokenizer.encode(str(text))  # Tunix hands over numpy strings

    def decode(self, ids: Sequence[int], **_: Any) -> str:
        return byte_tokenizer.decode(ids)

    def bos_id(self) -> int:
        return byte_tokenizer.BOS

    def eos_id(self) -> int:
        return byte_tokenizer.EOS

    def pad_id(self) -> int:
        return byte_tokenizer.PAD


@dataclass(frozen=True)
class Tokenizer:
    """Tunix's adapter around the tokenizer in use, its vocabulary size, and its source."""

    adapter: Any
    vocab_size: int
    source: str

    def count(self, text: str) -> int:
        """Tokens ``text`` encodes to (what the trace-length guardrail counts)."""
        return len(self.adapter.encode(text))


def load_tokenizer(uri: str | None, workdir: Path) -> Tokenizer:
    """``model.tokenizer`` (a SentencePiece model) or the built-in byte tokenizer."""
    from tunix.generate.tokenizer_adapter import TokenizerAdapter  # type: ignore[import-untyped]

    if uri is None:
        return Tokenizer(TokenizerAdapter(ByteTokenizer()), ByteTokenizer.vocab_size, "byte")
    import sentencepiece as spm

    local = fetch(uri, workdir / "tokenizer", "model.tokenizer")
    processor = spm.SentencePieceProcessor(model_file=str(local))
    if processor.pad_id() < 0:
        raise ValueError(
            f"model.tokenizer {uri}: the SentencePiece model defines no pad id; "
            "train it with --pad_id (Gemma's tokenizer has one)"
        )
    return Tokenizer(TokenizerAdapter(processor), int(processor.get_piece_size()), uri)
