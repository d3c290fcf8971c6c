"""A Sweep trial's shape: one pod, or several workers across hosts (a TPU slice, N GPU pods).

A trial of one pod reserves ``cpu``/``memory``/``gpu``/``tpu`` on one Ray node, as before.
A trial that *spans hosts* runs as a Ray Train ``JaxTrainer`` inside its Tune trial, one
worker per host (``tunix_rt.tune.multihost``); it asks either

* ``tpuSlice: {accelerator, topology}``: a whole slice, one worker per host of it (a v6e
  4x4 slice is 4 hosts of 4 chips, so 4 workers of ``TPU: 4``), or
* ``workers: N`` (+ ``gpusPerWorker: G``): N workers of G GPUs each (0: CPU workers),

and then ``cpu`` and ``memory`` are per worker. What fits where is
:func:`tunix_rt.api.placement.check_placement`'s business; this module is the shape only.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from tunix_rt.api.base import ApiModel, cel, cel_list, cel_rules, field_error
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.quantities import QUANTITY_PATTERN, TrialMemory, quantity_field
from tunix_rt.api.tpu import GENERATIONS, TpuSlice, accelerator_names, tpu_slice

TRIAL_DRIVER_RESOURCE = "tunix_rt_trial_driver"
"""Ray resource the Ray head advertises (one slot per concurrent trial) and a multi-host
trial's Tune function asks: the trial's driver (its Tune function and the JaxTrainer's
controller, which Ray pins to the same node) runs on the head, never on a slice host."""
TRIAL_DRIVER_SLOTS = 1000
"""Slots the head (or a local Ray) advertises: more than any sweep runs at once."""
TRAIN_V2_ENV = "RAY_TRAIN_V2_ENABLED"
"""Ray Train v2 (``ray.train.v2.jax.JaxTrainer`` + Tune): set in a multi-host sweep's job."""


TPU_CHIP_OPTIONS = (1, 2, 4, 8)
"""TPU chips Ray hands a task or trial: ``ray._private.accelerators.tpu.TPU_VALID_CHIP_OPTIONS``
(Ray refuses other counts); the pod itself requests all the chips of its host, as GKE
requires (https://cloud.google.com/kubernetes-engine/docs/how-to/tpus)."""


_TPU_CHIPS_CEL = cel(
    "!has(self.tpu) || self.tpu == 0 || self.tpu in [1, 2, 4, 8]",
    "tpu takes 1, 2, 4 or 8 chips (what Ray hands a trial)",
    ".tpu",
)


class TrialResources(ApiModel):
    """What one trial reserves on a Ray node (Ray Tune resources per trial)."""

    model_config = ConfigDict(json_schema_extra=cel_rules(_TPU_CHIPS_CEL))

    cpu: float = Field(1.0, gt=0, le=512, description="CPUs per trial.")
    memory: TrialMemory | None = quantity_field(
        None, "Memory per trial as a Kubernetes quantity (e.g. 4Gi).", QUANTITY_PATTERN
    )
    gpu: float = Field(0, ge=0, le=16, description="GPUs per trial (fractions share a GPU).")
    tpu: int = Field(0, ge=0, le=256, description="TPU chips per trial: 1, 2, 4 or 8.")

    @model_validator(mode="after")
    def _tpu_chips(self) -> TrialResources:
        if self.tpu and self.tpu not in TPU_CHIP_OPTIONS:
            raise field_error(
                "tpu",
                f"tpu is {self.tpu}, but Ray hands a trial 1, 2, 4 or 8 TPU chips of one host; "
                "use one of those, or take whole slices with tpuSlice",
                self.tpu,
            )
        return self


def resources_field(holder: str) -> Any:
    """``spec.resources``: what ``holder`` (one trial, the run) reserves."""
    return Field(
        default_factory=TrialResources,
        description=f"What {holder} reserves (cpu, memory, gpu, tpu).",
    )


class TpuSliceRequest(ApiModel):
    """A whole TPU slice for one trial: GKE accelerator type and slice topology."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "self.accelerator in " + cel_list(accelerator_names()),
                "unknown TPU accelerator; use one of "
                + ", ".join(g.gke_accelerator for g in GENERATIONS),
                ".accelerator",
            )
        )
    )

    accelerator: str = Field(
        min_length=1,
        description="GKE TPU type, e.g. tpu-v6e-slice or v6e "
        "(cloud.google.com/gke-tpu-accelerator).",
    )
    topology: str = Field(
        pattern=r"^[0-9]+(x[0-9]+){1,2}$", description="Slice topology, e.g. 4x4 or 2x2x2."
    )

    @model_validator(mode="after")
    def _known(self) -> TpuSliceRequest:
        self.shape()
        return self

    def shape(self) -> TpuSlice:
        """Hosts and chips of the slice (a field error when the TPU table refuses it)."""
        if self.accelerator not in accelerator_names():
            known = ", ".join(g.gke_accelerator for g in GENERATIONS)
            raise field_error(
                "accelerator",
                f"unknown TPU accelerator {self.accelerator!r}; use one of {known}",
                self.accelerator,
            )
        try:
            return tpu_slice(
                self.accelerator,
                self.topology,
                accelerator_field="accelerator",
                topology_field="topology",
            )
        except ManifestError as exc:
            raise field_error(exc.field, exc.reason, self.topology) from None


class SweepResources(TrialResources):
    """What one trial of a Sweep reserves: one pod's worth, or workers across hosts."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            _TPU_CHIPS_CEL,
            cel(
                "!has(self.tpuSlice) || !has(self.gpusPerWorker) || self.gpusPerWorker == 0",
                "a trial takes a TPU slice or GPU workers, not both",
                ".gpusPerWorker",
            ),
            cel(
                "!has(self.gpusPerWorker) || self.gpusPerWorker == 0 || "
                "(has(self.workers) && self.workers >= 2)",
                "gpusPerWorker is for trials over 2 or more workers; for one pod use gpu",
                ".gpusPerWorker",
            ),
            cel(
                "!(has(self.tpuSlice) || (has(self.workers) && self.workers > 1)) || "
                "((!has(self.gpu) || self.gpu == 0.0) && (!has(self.tpu) || self.tpu == 0))",
                "a trial over several workers takes gpusPerWorker or tpuSlice, not gpu or tpu",
                ".gpu",
            ),
        )
    )

    cpu: float = Field(
        1.0, gt=0, le=512, description="CPUs per trial (per worker when it spans workers)."
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Workers the trial spans, one per host or GPU pod (>1: a Ray Train "
        "JaxTrainer, data-parallel; unset: 1). With tpuSlice: the slice's hosts (may be "
        "left out).",
    )
    gpus_per_worker: int | None = Field(
        None, ge=0, le=16, description="GPUs of each worker of a multi-worker trial (unset: 0)."
    )
    tpu_slice: TpuSliceRequest | None = Field(
        None, description="A whole TPU slice per trial, one worker per host of it."
    )

    @model_validator(mode="after")
    def _shape(self) -> SweepResources:
        if self.tpu_slice is not None and self.gpus_per_worker:
            raise field_error(
                "gpusPerWorker",
                "a trial takes a TPU slice or GPU workers, not both; remove gpusPerWorker "
                "or tpuSlice",
                self.gpus_per_worker,
            )
        if self.gpus_per_worker and (self.workers or 1) < 2 and self.tpu_slice is None:
            raise field_error(
                "gpusPerWorker",
                f"gpusPerWorker ({self.gpus_per_worker}) is for trials over 2 or more workers "
                f"(workers is {self.workers or 1}); for one pod write gpu: {self.gpus_per_worker}, "
                "or set workers >= 2",
                self.gpus_per_worker,
            )
        if self.spans_hosts():
            for name, value in (("gpu", self.gpu), ("tpu", self.tpu)):
                if value:
                    fix = "gpusPerWorker" if name == "gpu" else "tpuSlice"
                    raise field_error(
                        name,
                        f"a trial over several workers asks its accelerators per worker: "
                        f"set {name} to 0 and use {fix}",
                        value,
                    )
        if self.tpu_slice is not None:
            hosts = self.tpu_slice.shape().hosts
            if self.workers is not None and self.workers != hosts:
                slice_ = self.tpu_slice
                raise field_error(
                    "workers",
                    f"workers is {self.workers} but a {slice_.accelerator} {slice_.topology} "
                    f"slice has {hosts} host{'s' if hosts > 1 else ''}, one worker each; "
                    f"set workers: {hosts} or leave it out",
                    self.workers,
                )
        return self

    def spans_hosts(self) -> bool:
        """Whether the trial runs as a JaxTrainer over workers (not as one Ray task)."""
        return self.tpu_slice is not None or (self.workers or 1) > 1

    def worker_count(self) -> int:
        """Workers of the trial: the slice's hosts, or ``workers``."""
        if self.tpu_slice is not None:
            return self.tpu_slice.shape().hosts
        return self.workers or 1

    def chips_per_worker(self) -> int:
        """TPU chips of each worker (a slice host's chips; 0 without a slice)."""
        return self.tpu_slice.shape().chips_per_host if self.tpu_slice is not None else 0
