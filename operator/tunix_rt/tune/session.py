"""One driver session's inputs and result: the invocation, what its steps share, its outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import SweepResult
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.file_names import EXPERIMENT_DIR
from tunix_rt.contract.layout import LOCAL_NAMESPACE, SweepFiles, SweepTarget
from tunix_rt.storage import Store
from tunix_rt.tune.durable import experiment_filesystem
from tunix_rt.tune.sweep_log import SweepLog


@dataclass
class SweepRun:
    """One invocation of the driver."""

    spec: SweepSpec
    name: str
    namespace: str = LOCAL_NAMESPACE
    storage: str | None = None
    address: str | None = None
    ray_storage: str | None = None
    fresh: bool = False
    num_cpus: int | None = None
    echo: bool = True
    env: dict[str, str] = field(default_factory=dict)
    spec_path: str | None = None
    """Where the spec came from (the manifest's config_path); None: passed inline."""
    command: list[str] | None = None
    warm_start_uri: str | None = None
    """The results of the Sweep ``spec.warmStartFrom.sweep`` names, as the operator
    resolved them (None: ``<storage>/<namespace>/<name>``)."""

    @property
    def storage_uri(self) -> str:
        return self.storage or self.spec.storage


@dataclass
class SweepOutcome:
    exit_code: ExitCode
    message: str
    summary: SweepResult | None = None
    results_uri: str | None = None
    evidence_uri: str | None = None
    bundle_uri: str | None = None


def experiment_root(run: SweepRun, store: Store, target: SweepTarget) -> str:
    """Folder (``storage_path``) under which Ray keeps the experiment ``ray/``: the
    sweep's prefix in the store (a path in the store's filesystem), unless
    ``--ray-storage`` names another."""
    if run.ray_storage:
        return run.ray_storage
    return f"{store.root}/{target.layout.prefix}"


def experiment_fs(run: SweepRun, store: Store) -> Any:
    """The pyarrow filesystem of :func:`experiment_root`: the store's own for object
    stores (None: a local folder, Ray's default)."""
    if run.ray_storage or store.scheme == "file":
        return None
    return experiment_filesystem(store)


@dataclass(frozen=True)
class Session:
    """One run of the driver: what its steps share."""

    run: SweepRun
    target: SweepTarget
    files: SweepFiles
    say: SweepLog
    root: str
    """Ray's ``storage_path`` (:func:`experiment_root`)."""
    started: datetime
    fs: Any = None
    """Ray's ``storage_filesystem`` (:func:`experiment_fs`); None: a local folder."""

    @property
    def experiment(self) -> str:
        """Ray Tune's experiment folder: what a later session restores."""
        return f"{self.root}/{EXPERIMENT_DIR}"

    @property
    def in_store(self) -> bool:
        """Ray's experiment lives under the sweep's prefix in the store."""
        return not self.run.ray_storage
