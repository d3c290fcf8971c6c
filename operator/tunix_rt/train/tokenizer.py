"""Byte-level tokenizer with the four format tags as single tokens; shipped in code.

Bytes keep any user JSONL encodable (nothing to download, no unknown token). The tags
``<reasoning>``, ``</reasoning>``, ``<answer>``, ``</answer>`` are one token each so a
trace costs a handful of tokens instead of 40 characters of markup, which shortens
sequences (faster steps) and makes the format trivial to learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

PAD: Final = 0
BOS: Final = 1
EOS: Final = 2
REASONING_OPEN: Final = 3
REASONING_CLOSE: Final = 4
ANSWER_OPEN: Final = 5
ANSWER_CLOSE: Final = 6
BYTE_OFFSET: Final = 8
VOCAB_SIZE: Final = BYTE_OFFSET + 256

TAGS: Final[dict[str, int]] = {
    "<reasoning>": REASONING_OPEN,
    "</reasoning>": REASONING_CLOSE,
    "<answer>": ANSWER_OPEN,
    "</answer>": ANSWER_CLOSE,
}
_TAG_TEXT: Final[dict[int, str]] = {token: text for text, token in TAGS.items()}
STOP_TOKENS: Final = (ANSWER_CLOSE, EOS)
"""Generation ends at ``</answer>`` (or an explicit EOS)."""


def encode(text: str) -> list[int]:
    """Text -> token ids: tags become one token, everything else UTF-8 bytes."""
    tokens: list[int] = []
    i = 0
    while i < len(text):
        if text[i] == "<":
            tag = next((t for t in TAGS if text.startswith(t, i)), None)
            if tag is not None:
                tokens.append(TAGS[tag])
                i += len(tag)
                continue
        j = text.find("<", i + 1)
        j = len(text) if j < 0 else j
        tokens.extend(BYTE_OFFSET + b for b in text[i:j].encode("utf-8"))
        i = j
    return tokens


def decode(tokens: Sequence[int]) -> str:
    """Token ids -> text; PAD/BOS/EOS are dropped, broken UTF-8 is replaced, not raised."""
    parts: list[str] = []
    pending = bytearray()
    for token in tokens:
        token = int(token)
        if token >= BYTE_OFFSET:
            pending.append(token - BYTE_OFFSET)
            continue
        if pending:
            parts.append(pending.decode("utf-8", errors="replace"))
            pending.clear()
        if token in _TAG_TEXT:
            parts.append(_TAG_TEXT[token])
    if pending:
        parts.append(pending.decode("utf-8", errors="replace"))
    return "".join(parts)


def format_target(reasoning: str, answer: str) -> str:
    """The hackathon output format the model is trained to produce."""
    return f"<reasoning>{reasoning}</reasoning><answer>{answer}</answer>"
