"""backend python: the user's entrypoint, imported and checked, and which code it was
(file, digest, distribution) as the run manifest records it."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunix_rt.train.result import ModelSource

if TYPE_CHECKING:
    from tunix_rt.train.backends.python import Trial


class EntrypointError(ValueError):
    """``trainer.entrypoint`` cannot be imported or called, or broke the contract."""


def load_entrypoint(entrypoint: str) -> Callable[[Trial], Any]:
    """The user's function, imported; an :class:`EntrypointError` naming
    ``trainer.entrypoint`` when the module or function is missing or takes other
    arguments than one trial."""
    module_name, _, attr = entrypoint.partition(":")
    field = f"trainer.entrypoint {entrypoint!r}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise EntrypointError(
                f"{field}: no module named {missing!r} on this worker; install the package "
                "in the trial image, or (local runs) put the folder holding it on PYTHONPATH"
            ) from None
        raise EntrypointError(f"{field}: importing {module_name} failed: {exc}") from exc
    except Exception as exc:
        raise EntrypointError(
            f"{field}: importing {module_name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    function = getattr(module, attr, None)
    if function is None or not callable(function):
        defined = sorted(
            n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")
        )
        what = "has no function" if function is None else "has a non-callable"
        raise EntrypointError(
            f"{field}: module {module_name} ({_module_file(module)}) {what} {attr!r}; "
            f"its functions: {defined}"
        )
    try:
        inspect.signature(function).bind(object())
    except TypeError:
        raise EntrypointError(
            f"{field}: {attr}{inspect.signature(function)} must take one argument, the trial "
            f"(def {attr}(trial): ...)"
        ) from None
    except ValueError:  # no signature to read (a builtin): the call will tell
        pass
    typed: Callable[[Trial], Any] = function
    return typed


def _module_file(module: Any) -> str:
    return str(getattr(module, "__file__", None) or "built in")


def code_identity(entrypoint: str) -> dict[str, Any]:
    """Which code ran: the entrypoint, its module file and that file's sha256, and the
    installed distribution holding it (when there is one)."""
    module = sys.modules.get(entrypoint.partition(":")[0])
    path = getattr(module, "__file__", None)
    out: dict[str, Any] = {"entrypoint": entrypoint, "file": None, "file_sha256": None}
    if path and os.path.isfile(path):
        out["file_sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        here = Path.cwd()
        resolved = Path(path).resolve()
        out["file"] = str(resolved.relative_to(here) if resolved.is_relative_to(here) else path)
    return out


def distribution_versions(entrypoint: str) -> dict[str, str]:
    """``{distribution: version}`` of the installed package the entrypoint lives in."""
    top = entrypoint.partition(":")[0].split(".")[0]
    out: dict[str, str] = {}
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def model_source(described: ModelSource | None, entrypoint: str) -> ModelSource:
    """What the run manifest records: the model the entrypoint described (or, when it
    described none, no checkpoint: tunix-rt loaded none and none was declared), with the
    entrypoint's code (file and sha256) under ``config.code``."""
    code = code_identity(entrypoint)
    versions = distribution_versions(entrypoint)
    if described is not None:
        return described.model_copy(
            update={
                "config": {**described.config, "code": code},
                "versions": {**versions, **described.versions},
            }
        )
    return ModelSource(
        name=entrypoint,
        config={"code": code, "described": False},
        checkpoint=None,
        random_init=True,
        versions=versions,
    )
