from __future__ import annotations

from tunix_rt.train import tokenizer


def test_tags_are_single_tokens_and_text_round_trips() -> None:
    text = "<reasoning>051419 050709 -520</reasoning><answer>-25</answer>"
    tokens = tokenizer.encode(text)
    assert tokens[0] == tokenizer.REASONING_OPEN
    assert tokens[-1] == tokenizer.ANSWER_CLOSE
    assert tokens.count(tokenizer.ANSWER_OPEN) == 1
    assert len(tokens) == len(text) - sum(len(tag) - 1 for tag in tokenizer.TAGS)
    assert tokenizer.decode(tokens) == text


def test_any_unicode_is_encodable_and_ids_fit_the_vocabulary() -> None:
    text = "Ünïcode < not a tag <answer x> 東京"
    tokens = tokenizer.encode(text)
    assert all(0 <= t < tokenizer.VOCAB_SIZE for t in tokens)
    assert tokenizer.decode(tokens) == text


def test_decode_drops_control_tokens_and_survives_broken_utf8() -> None:
    tokens = [tokenizer.BOS, *tokenizer.encode("ok"), tokenizer.PAD, tokenizer.BYTE_OFFSET + 0xC3]
    assert tokenizer.decode(tokens) == "ok\ufffd"
