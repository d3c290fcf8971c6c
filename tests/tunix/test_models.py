"""Tunix models by name, weights from a checkpoint the test writes (orbax, safetensors,
a local path or an s3:// URI), the digest, the tokenizers, and the eval's stop rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunix_rt.api.errors import ManifestError
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trainer_backends import TUNIX_MODELS, tunix_model_name

pytest.importorskip("tunix", reason="the tunix extra is not installed")

import jax
import numpy as np
from flax import nnx

from tunix_rt.train.backends import tunix_eval, tunix_model, tunix_tokenizer, tunix_weights


def tiny_config(**model: Any) -> TrainerConfig:
    return TrainerConfig.model_validate(
        {"backend": "tunix-sft", "model": {"name": "gemma3-tiny", **model}}
    )


def weights(model: Any) -> dict[tuple[Any, ...], np.ndarray]:
    pure = nnx.to_pure_dict(nnx.state(model, tunix_weights.base_weights()))
    return {k: np.asarray(v) for k, v in tunix_weights.flatten(pure).items()}


def random_model(seed: int) -> Any:
    return tunix_model._init_model(tunix_model.gemma_config("gemma3-tiny", 264), seed)


# ------------------------------------------------------------------ names


def test_every_listed_name_builds_a_tunix_config() -> None:
    for name in TUNIX_MODELS:
        config = tunix_model.gemma_config(name, 264)
        assert config.num_layers >= 2 and config.num_embed >= 264
    assert tunix_model.gemma_config("gemma3-1b", 264).num_layers == 26
    assert tunix_model.gemma_config("gemma3-tiny", 300).num_embed == 300


@pytest.mark.parametrize("spelling", ["gemma3_1b_pt", "Gemma3-1B", "gemma3-1b", "gemma3_1b"])
def test_spellings_of_one_name(spelling: str) -> None:
    assert tunix_model_name(spelling) == "gemma3-1b"


def test_admission_requires_a_known_name_for_tunix_backends() -> None:
    with pytest.raises(ValueError, match=r"model\.name") as missing:
        TrainerConfig.model_validate({"backend": "tunix-grpo"})
    assert "gemma3-tiny" in str(missing.value)
    with pytest.raises(ValueError, match="unknown Tunix model 'gemma3-2b'"):
        TrainerConfig.model_validate({"backend": "tunix-sft", "model": {"name": "gemma3-2b"}})
    with pytest.raises(ValueError, match=r"model\.tokenizer is read by the Tunix backends"):
        TrainerConfig.model_validate({"model": {"tokenizer": "t.model"}})


def test_overrides_cannot_drop_the_model_name() -> None:
    base = tiny_config()
    with pytest.raises(ManifestError, match=r"model\.name"):
        base.with_overrides({"model": {"name": None}})


# ------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize("fmt", ["orbax", "safetensors"])
def test_checkpoint_round_trip(tmp_path: Path, fmt: str) -> None:
    """Weights saved from one model load into a freshly initialised other one."""
    trained = random_model(seed=1)
    if fmt == "orbax":
        path = tunix_weights.save_orbax(trained, tmp_path / "ckpt")
    else:
        path = tunix_weights.save_safetensors(trained, tmp_path / "ckpt")
    assert tunix_weights.checkpoint_format(path) == fmt
    mesh = tunix_model.make_mesh()
    fresh = random_model(seed=2)
    key = ("embedder", "input_embedding")
    assert not np.allclose(weights(fresh)[key], weights(trained)[key])
    with mesh:
        loaded = tunix_weights.load_weights(fresh, path, fmt, mesh)
    want, got = weights(trained), weights(loaded)
    assert want.keys() == got.keys()
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-6, err_msg=str(key))


def test_safetensors_folder_and_file_both_load(tmp_path: Path) -> None:
    path = tunix_weights.save_safetensors(random_model(seed=3), tmp_path / "st")
    assert path.name == "model.safetensors"
    assert tunix_weights.checkpoint_format(path.parent) == "safetensors"
    assert tunix_weights.checkpoint_format(path) == "safetensors"


def test_build_records_the_checkpoint_and_its_digest(tmp_path: Path) -> None:
    path = tunix_weights.save_orbax(random_model(seed=4), tmp_path / "ckpt")
    lines: list[str] = []
    built = tunix_model.build(tiny_config(checkpoint=str(path)), tmp_path / "work", lines.append)
    source = built.source
    assert not source.random_init and source.checkpoint == str(path)
    assert source.checkpoint_sha256 == tunix_weights.sha256_of(path)
    assert source.versions["google-tunix"] and source.versions["qwix"]
    assert source.config["num_layers"] == 2 and source.config["lora_rank"] == 8
    assert any("orbax weights from" in line for line in lines)
    np.testing.assert_allclose(
        weights(built.base)[("final_norm", "scale")],
        weights(random_model(seed=4))[("final_norm", "scale")],
    )


def test_random_init_is_said_plainly(tmp_path: Path) -> None:
    lines: list[str] = []
    built = tunix_model.build(tiny_config(), tmp_path, lines.append)
    assert built.source.random_init and built.source.checkpoint is None
    assert built.source.checkpoint_sha256 is None
    assert any("RANDOM INIT" in line for line in lines)


def test_digest_changes_with_the_content(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"one")
    first = tunix_weights.sha256_of(folder)
    assert tunix_weights.sha256_of(folder) == first
    (folder / "a.bin").write_bytes(b"two")
    assert tunix_weights.sha256_of(folder) != first


def test_bad_checkpoints_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"model\.checkpoint .*: no such file"):
        tunix_weights.fetch(str(tmp_path / "missing"), tmp_path, "model.checkpoint")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"not \.safetensors"):
        tunix_weights.checkpoint_format(tmp_path / "weights.bin")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"neither \*\.safetensors nor an orbax"):
        tunix_weights.checkpoint_format(tmp_path / "empty")


def test_a_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    other = tunix_model._init_model(tunix_model.gemma_config("gemma3-tiny", 300), 0)  # bigger vocab
    path = tunix_weights.save_orbax(other, tmp_path / "ckpt")
    mesh = tunix_model.make_mesh()
    with mesh, pytest.raises(ValueError, match=r"input_embedding has shape \(300, 64\)"):
        tunix_weights.load_weights(random_model(seed=0), path, "orbax", mesh)


def test_s3_checkpoint_is_copied_and_loaded(tmp_path: Path, bucket: str) -> None:
    """An s3:// prefix (moto's real S3 server) is copied with the store's client."""
    from tunix_rt.storage import Store

    path = tunix_weights.save_safetensors(random_model(seed=5), tmp_path / "st")
    uri = f"s3://{bucket}/models/tiny"
    Store(uri).upload_file(path, "model.safetensors")
    local = tunix_weights.fetch(uri, tmp_path / "work", "model.checkpoint")
    assert tunix_weights.checkpoint_format(local) == "safetensors"
    assert tunix_weights.sha256_of(local) == tunix_weights.sha256_of(path.parent)


# ------------------------------------------------------------------ tokenizers, stop rule


def test_byte_tokenizer_fits_the_gemma_interface() -> None:
    tok = tunix_tokenizer.load_tokenizer(None, Path("."))
    ids = tok.adapter.encode("<reasoning>12</reasoning><answer>3</answer>")
    assert len(ids) == 7 and max(ids) < tok.vocab_size == 264
    assert tok.adapter.decode(ids) == "<reasoning>12</reasoning><answer>3</answer>"
    assert (tok.adapter.pad_id(), tok.adapter.bos_id(), tok.adapter.eos_id()) == (0, 1, 2)


def test_sentencepiece_tokenizer_from_a_model_the_test_trains(tmp_path: Path) -> None:
    import sentencepiece as spm

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"{a}+{b}={a + b}" for a in range(40) for b in range(40)))
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(tmp_path / "sp"),
        vocab_size=60,
        pad_id=0,
        unk_id=3,
        bos_id=2,
        eos_id=1,
        user_defined_symbols=["<reasoning>", "</reasoning>", "<answer>", "</answer>"],
    )
    tok = tunix_tokenizer.load_tokenizer(str(tmp_path / "sp.model"), tmp_path)
    assert tok.vocab_size == 60 and tok.source.endswith("sp.model")
    text = "<answer>12+3</answer>"
    assert tok.adapter.decode(tok.adapter.encode(text)) == text
    assert tunix_model.gemma_config("gemma3-tiny", tok.vocab_size).num_embed == 60


def test_stop_index_finds_the_first_closing_tag() -> None:
    tok = tunix_tokenizer.load_tokenizer(None, Path("."))
    tokens = tok.adapter.encode("<reasoning>1</reasoning><answer>2</answer>junk</answer>")
    stop = tunix_eval.stop_index(tokens, tok.adapter.decode)
    assert stop == 6
    assert tok.adapter.decode(tokens[:stop]).endswith("<answer>2</answer>")
    assert tunix_eval.stop_index(tok.adapter.encode("<reasoning>1"), tok.adapter.decode) is None


def test_devices_form_the_mesh() -> None:
    mesh = tunix_model.make_mesh()
    assert mesh.devices.size == jax.device_count()
    assert mesh.axis_names == ("fsdp", "tp")


@pytest.mark.slow
def test_merged_lora_computes_what_the_adapted_model_does() -> None:
    """Folding the adapters into the weights (the SFT export) keeps the function."""
    import jax.numpy as jnp
    from tunix.sft import utils

    lora = tunix_model.apply_lora(random_model(seed=6), rank=4, alpha=8.0, seed=6)
    adapters = nnx.state(lora, nnx.LoRAParam)
    rng = np.random.default_rng(7)  # drawn on the host: no op compiled per adapter shape
    nnx.update(  # lora_b starts at zero (no change): make every adapter count
        lora,
        jax.tree.map(lambda x: jnp.asarray(0.05 * rng.standard_normal(x.shape), x.dtype), adapters),
    )
    merged = tunix_model.merge_lora(lora, rank=4, alpha=8.0)
    assert not nnx.state(merged, nnx.LoRAParam)
    tokens = jnp.asarray(np.random.default_rng(0).integers(3, 264, (2, 12)), jnp.int32)
    present = jnp.ones_like(tokens, bool)
    positions, mask = utils.build_positions_from_mask(present), utils.make_causal_attn_mask(present)

    @nnx.jit  # each model's forward as one program, not op by op
    def forward(model: Any) -> Any:
        logits, _ = model(tokens, positions, None, mask)
        return logits

    want, got, base = forward(lora), forward(merged), forward(random_model(seed=6))
    assert not np.allclose(np.asarray(base), np.asarray(want), atol=1e-3)  # adapters matter
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-4, atol=2e-4)
