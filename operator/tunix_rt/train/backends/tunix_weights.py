"""Gemma3 weights on disk for the Tunix backends: fetched from a path or URI, digested,
their format detected (orbax or safetensors), loaded into a model, and saved.

Weights come from ``model.checkpoint`` when given (a local path, or a ``gs://`` / ``s3://``
URI copied to local disk first); their sha256 goes into the run's
:class:`~tunix_rt.train.result.ModelSource`.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from tunix_rt.evidence.checksums import sha256_file

SAFETENSORS_FILE = "model.safetensors"
ORBAX_MARKERS = ("_CHECKPOINT_METADATA", "_METADATA", "manifest.ocdbt", "checkpoint")


def flatten(tree: dict[Any, Any], prefix: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    """A nested dict as ``{path tuple: leaf}``."""
    out: dict[tuple[Any, ...], Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, (*prefix, key)))
        else:
            out[(*prefix, key)] = value
    return out


def unflatten(flat: dict[tuple[Any, ...], Any]) -> dict[Any, Any]:
    """The inverse of :func:`flatten`."""
    tree: dict[Any, Any] = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def base_weights() -> Any:
    """The nnx filter for a model's own weights (LoRA adapters excluded)."""
    return nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))


def fetch(uri: str, workdir: Path, field: str) -> Path:
    """A local path for ``uri``: itself when local, else a copy of the object (or of
    every object under the prefix) made with the store's client and retry policy."""
    if "://" not in uri or uri.startswith("file://"):
        path = Path(uri.removeprefix("file://")).expanduser()
        if not path.exists():
            raise ValueError(f"{field} {uri}: no such file or folder")
        return path
    from tunix_rt.storage import Store

    store = Store(uri)
    keys = store.list("")
    target = workdir / "remote"
    if keys:
        for key in keys:
            store.download(key, target / key)
        return target
    parent, _, name = uri.rstrip("/").rpartition("/")
    try:
        return Store(parent).download(name, target / name)
    except FileNotFoundError:
        raise ValueError(f"{field} {uri}: no such object or prefix") from None


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a folder as the sorted ``<sha256>  <relative path>`` lines
    of its files (so a renamed or changed shard changes the digest)."""
    if path.is_file():
        return sha256_file(path)
    lines = [
        f"{sha256_file(p)}  {p.relative_to(path).as_posix()}\n"
        for p in sorted(path.rglob("*"))
        if p.is_file()
    ]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def checkpoint_format(path: Path) -> str:
    """``safetensors`` (a .safetensors file, or a folder of them) or ``orbax``."""
    if path.is_file():
        if path.suffix == ".safetensors":
            return "safetensors"
        raise ValueError(
            f"model.checkpoint {path}: a file, but not .safetensors; give a safetensors "
            "file or folder, or an orbax checkpoint folder"
        )
    if any(path.glob("*.safetensors")):
        return "safetensors"
    if any((path / marker).exists() for marker in ORBAX_MARKERS):
        return "orbax"
    raise ValueError(
        f"model.checkpoint {path}: neither *.safetensors nor an orbax checkpoint "
        f"(none of {list(ORBAX_MARKERS)}) in this folder"
    )


def load_weights(model: Any, path: Path, fmt: str, mesh: Mesh) -> Any:
    """``model`` (an initialised Gemma3) with the checkpoint's weights, cast to its dtypes."""
    from tunix.models.gemma3 import params as gemma_params  # type: ignore[import-untyped]
    from tunix.models.gemma3 import params_safetensors

    config = model.config
    if fmt == "safetensors":
        folder = path
        if path.is_file():  # Tunix reads every *.safetensors in a folder
            folder = Path(tempfile.mkdtemp(prefix="tunix-rt-st-"))
            (folder / path.name).symlink_to(path.resolve())
        with mesh:
            loaded = params_safetensors.create_model_from_safe_tensors(
                str(folder), config, mesh, dtype=config.param_dtype
            )
        return loaded
    import orbax.checkpoint as ocp  # type: ignore[import-untyped]

    restored = ocp.StandardCheckpointer().restore(str(path.resolve()))
    if "transformer" in restored:  # Google's released Gemma checkpoints
        restored = gemma_params.map_from_upstream_checkpoint(
            restored, text_only=config.vision_config is None
        )
    current = flatten(nnx.to_pure_dict(nnx.state(model, base_weights())))
    update = matched_weights(current, flatten(restored), path)
    nnx.update(model, unflatten(update))
    return model


def matched_weights(
    want: dict[tuple[Any, ...], Any], got: dict[tuple[Any, ...], Any], path: Path
) -> dict[tuple[Any, ...], Any]:
    """The checkpoint's value for each of the model's weights (keys compared as text:
    orbax writes a layer index as a string), cast to the model's dtype; a missing weight
    or a shape the config does not have is an error naming the checkpoint."""
    by_text = {tuple(map(str, key)): value for key, value in got.items()}
    out: dict[tuple[Any, ...], Any] = {}
    missing: list[str] = []
    for key, old in want.items():
        text = tuple(map(str, key))
        if text not in by_text:
            missing.append("/".join(text))
            continue
        new = by_text[text]
        if tuple(np.shape(new)) != tuple(old.shape):
            raise ValueError(
                f"model.checkpoint {path}: {'/'.join(text)} has shape {tuple(np.shape(new))}, "
                f"the config needs {tuple(old.shape)}; check model.name and model.tokenizer"
            )
        out[key] = jnp.asarray(new, dtype=old.dtype)
    if missing:
        raise ValueError(
            f"model.checkpoint {path}: missing {len(missing)} weights of model.name's "
            f"config (first: {missing[:3]}); is it a checkpoint of that model?"
        )
    return out


def save_orbax(model: Any, folder: Path) -> Path:
    """The model's weights as an orbax checkpoint that ``model.checkpoint`` can load."""
    import orbax.checkpoint as ocp

    params = nnx.to_pure_dict(nnx.state(model, base_weights()))
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(str(folder.resolve()), params, force=True)
    checkpointer.wait_until_finished()
    return folder


def save_safetensors(model: Any, folder: Path) -> Path:
    """The model's weights in Hugging Face's Gemma3 layout (what Tunix's safetensors
    loader and released checkpoints use), as ``folder/model.safetensors``."""
    from safetensors.numpy import save_file

    config = model.config
    params = flatten(nnx.to_pure_dict(nnx.state(model, base_weights())))
    tensors: dict[str, np.ndarray] = {}
    d, n, h = config.embed_dim, config.num_heads, config.head_dim

    def put(name: str, value: Any) -> None:
        tensors[name] = np.ascontiguousarray(np.asarray(value, dtype=np.float32))

    put("model.embed_tokens.weight", params[("embedder", "input_embedding")])
    put("model.norm.weight", params[("final_norm", "scale")])
    for layer in range(config.num_layers):
        p = {key[2:]: v for key, v in params.items() if key[:2] == ("layers", layer)}
        pre = f"model.layers.{layer}"
        if ("attn", "qkv_einsum", "w") in p:
            q, key_w, value_w = np.asarray(p[("attn", "qkv_einsum", "w")])
        else:
            q = np.asarray(p[("attn", "q_einsum", "w")])
            key_w, value_w = np.asarray(p[("attn", "kv_einsum", "w")])
        put(f"{pre}.self_attn.q_proj.weight", q.transpose(1, 0, 2).reshape(d, n * h).T)
        put(f"{pre}.self_attn.k_proj.weight", key_w.transpose(1, 0, 2).reshape(d, -1).T)
        put(f"{pre}.self_attn.v_proj.weight", value_w.transpose(1, 0, 2).reshape(d, -1).T)
        vec = np.asarray(p[("attn", "attn_vec_einsum", "w")])
        put(f"{pre}.self_attn.o_proj.weight", vec.reshape(n * h, d).T)
        put(f"{pre}.self_attn.q_norm.weight", p[("attn", "_query_norm", "scale")])
        put(f"{pre}.self_attn.k_norm.weight", p[("attn", "_key_norm", "scale")])
        for proj in ("gate_proj", "up_proj", "down_proj"):
            put(f"{pre}.mlp.{proj}.weight", np.asarray(p[("mlp", proj, "kernel")]).T)
        for ours, theirs in (
            ("pre_attention_norm", "input_layernorm"),
            ("post_attention_norm", "post_attention_layernorm"),
            ("pre_ffw_norm", "pre_feedforward_layernorm"),
            ("post_ffw_norm", "post_feedforward_layernorm"),
        ):
            put(f"{pre}.{theirs}.weight", p[(ours, "scale")])
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / SAFETENSORS_FILE))
    return folder / SAFETENSORS_FILE
