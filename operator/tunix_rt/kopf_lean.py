"""Import kopf without the Kubernetes client libraries it would load by itself.

kopf 1.45 imports ``kubernetes_asyncio.client`` (and ``kubernetes``, ``pykube``) when
they are installed, only to recognise their model objects in ``kopf.adopt`` and friends;
the operator passes plain dicts, never those models. ``kubernetes_asyncio.client`` is
~860 modules and ~60 MiB of the operator's resident memory (measured: RSS after
``import kopf`` 104 MiB with them, 43 MiB without; benchmarks/README.md). Importing
this module first imports kopf with those three hidden for the duration of that one
import; later imports of them (the kubeconfig login's exec-plugin fallback) work as
usual. Once kopf is imported (by anything), this does nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

HIDDEN = ("kubernetes_asyncio", "kubernetes", "pykube")


class _Hide:
    """A meta-path finder that makes ``HIDDEN`` packages look absent."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"hidden while kopf is imported: {name}", name=name)
        return None


def import_kopf() -> None:
    """Import kopf (once per process) without the client libraries' models."""
    if "kopf" in sys.modules:
        return
    hide = _Hide()
    sys.meta_path.insert(0, hide)
    try:
        import kopf  # noqa: F401
    finally:
        sys.meta_path.remove(hide)


import_kopf()
