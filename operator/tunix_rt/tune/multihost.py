"""Trials over several hosts: a Ray Train ``JaxTrainer`` inside the Ray Tune trial.

A Sweep whose ``resources`` span hosts (``tpuSlice``, or ``workers`` > 1 with or without
``gpusPerWorker``) runs each trial as:

* the **Tune trial function** (:func:`train_multihost_trial`, on the Ray head: it asks
  one ``TRIAL_DRIVER_RESOURCE`` slot and no CPU) writes the Running record, builds a
  ``JaxTrainer`` (one worker per host / GPU pod, ``use_tpu`` + topology for a slice,
  ``use_gpu`` for GPUs) and waits for ``fit()``; it writes the Failed record when the
  trainer fails; lost workers are a preemption (``tune.preemption``: Tune retries the
  trial, which resumes from its checkpoints on a ``file://`` store);
* every **worker** (:func:`worker_loop`) joins ``jax.distributed`` (Ray Train's JAX backend
  does it on TPU and GPU; on CPU the worker does it itself, coordinator address broadcast
  from rank 0) and runs the same trainer, data-parallel over the devices of all workers
  (``train.sharding``);
* **rank 0 alone** writes the trial's record to the store (running updates, eval points,
  the final Succeeded record) and the trainer's checkpoints are written once (orbax
  writes from process 0).

How metrics reach Tune, decided: every worker calls ``ray.train.report`` at the same
steps with the same (replicated) metrics, and Ray Tune's ``TuneReportCallback`` forwards
rank 0's to the Tune trial as it trains, so schedulers and searchers see a multi-host
trial exactly as a one-pod one. No Ray Train checkpoint is attached (the trainer keeps its
own), so ``Result.metrics`` of ``fit()`` is None by design and is not read: the store
record (written by rank 0) and the forwarded reports are the trial's result. Eval rows
are computed on every worker (the decode is gathered across processes) and scored once.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import traceback
from dataclasses import dataclass
from typing import Any

from tunix_rt.api.quantities import quantity_bytes
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.tpu import generation_for
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.api.trial_shape import TRAIN_V2_ENV, TRIAL_DRIVER_RESOURCE
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.tune.preemption import checkpoint_seen, lost_worker, refuse_retry, trainer_failed
from tunix_rt.tune.records import failed_record, plain, utcnow
from tunix_rt.tune.trainable import (
    Reporter,
    TrialContext,
    checkpoint_dir,
    final_record,
    prepare_worker,
    previous_record,
    replayed_metrics,
    resumed_record,
    run_workload,
    running_record,
)

__all__ = ["TRAIN_V2_ENV", "make_trainable", "scaling_config", "total_resources"]


@dataclass(frozen=True)
class WorkerJob:
    """What every worker of one trial needs (sent as the JaxTrainer's loop config)."""

    context: TrialContext
    trial_id: str
    params: dict[str, Any]
    record: TrialResult


def driver_resources() -> dict[str, float]:
    """``tune.with_resources`` of a multi-host trial: a driver slot on the head, no CPU
    (the JaxTrainer's controller is pinned to the same node and asks none)."""
    return {"cpu": 0, TRIAL_DRIVER_RESOURCE: 1}


def worker_resources(spec: SweepSpec) -> dict[str, float]:
    """Ray resources of one worker (ScalingConfig.resources_per_worker)."""
    res = spec.resources
    out: dict[str, float] = {"CPU": res.cpu}
    if res.memory:
        out["memory"] = float(quantity_bytes(res.memory))
    if res.gpus_per_worker:
        out["GPU"] = float(res.gpus_per_worker)
    if res.tpu_slice is not None:
        out["TPU"] = float(res.chips_per_worker())
    return out


def total_resources(spec: SweepSpec) -> dict[str, float]:
    """All workers of one trial, in ``trial_resources`` terms (the local fit check)."""
    per, n = worker_resources(spec), spec.resources.worker_count()
    out = {"cpu": per["CPU"] * n}
    if "GPU" in per:
        out["gpu"] = per["GPU"] * n
    if "TPU" in per:
        out["TPU"] = per["TPU"] * n
    return out


def scaling_config(spec: SweepSpec) -> Any:
    """One worker per host of the slice (TPU), per GPU pod (GPU) or per CPU worker."""
    from ray.train.v2.api.config import ScalingConfig

    res = spec.resources
    kwargs: dict[str, Any] = {
        "num_workers": res.worker_count(),
        "resources_per_worker": worker_resources(spec),
    }
    if res.tpu_slice is not None:
        shape = res.tpu_slice.shape()
        kwargs.update(
            use_tpu=True,
            topology=shape.topology,
            accelerator_type=generation_for(shape.gke_accelerator).ray_type,
        )
    elif res.gpus_per_worker:
        kwargs["use_gpu"] = True
    return ScalingConfig(**kwargs)


def make_trainable(context: TrialContext) -> Any:
    """The Tune trainable of a multi-host sweep (what ``driver.make_trainable`` returns)."""
    from ray import tune

    return tune.with_resources(
        tune.with_parameters(train_multihost_trial, context=context), driver_resources()
    )


def train_multihost_trial(config: dict[str, Any], context: TrialContext) -> None:
    """Ray Tune function trainable: one JaxTrainer ``fit()`` over the trial's workers."""
    from ray import tune
    from ray.train.v2.api.config import FailureConfig, RunConfig
    from ray.train.v2.jax import JaxTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    os.environ.setdefault(TRAIN_V2_ENV, "1")
    trial_id = tune.get_context().get_trial_id()
    files = context.target.files()
    params = {name: plain(value) for name, value in config.items()}
    previous = previous_record(files, trial_id)
    if previous is not None and previous.state is TrialState.SUCCEEDED:
        tune.report(replayed_metrics(previous))  # finished in an earlier session
        return
    if trainer_failed(previous):
        assert previous is not None
        raise refuse_retry(previous)  # Tune retries lost workers only (tune.preemption)
    backend = context.spec.trainer.backend
    record = resumed_record(running_record(context.target, trial_id, params, backend), previous)
    directory = checkpoint_dir(context, trial_id, context.spec.trial_config(params))
    record = checkpoint_seen(record, directory, utcnow())  # the step it resumes from
    files.write_trial(record)
    started = time.monotonic()
    trainer = JaxTrainer(
        worker_loop,
        train_loop_config={"job": WorkerJob(context, trial_id, params, record)},
        scaling_config=scaling_config(context.spec),
        run_config=RunConfig(
            name=f"{context.target.sweep}-{trial_id}",
            storage_path=os.path.join(tempfile.gettempdir(), "tunix-rt-train"),
            callbacks=[TuneReportCallback()],  # type: ignore[no-untyped-call]
            failure_config=FailureConfig(max_failures=0),
        ),
    )
    try:
        result = trainer.fit()
        if result.error is not None:
            raise result.error
    except Exception as exc:
        if lost_worker(exc):  # a preemption: still Running, Tune retries the trial
            raise
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        last = previous_record(files, trial_id) or record
        files.write_trial(
            failed_record(last, detail).model_copy(
                update={"wall_seconds": time.monotonic() - started}
            )
        )
        raise


def worker_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: join JAX's processes, train data-parallel, report; rank 0
    writes the trial's record."""
    from ray.train.v2.api.train_fn_utils import get_context, report

    job: WorkerJob = config["job"]
    context = job.context
    prepare_worker(context)
    rank, size = get_context().get_world_rank(), get_context().get_world_size()
    spec = context.spec
    on_cpu = spec.resources.tpu_slice is None and not spec.resources.gpus_per_worker
    if on_cpu and size > 1:
        join_cpu_processes(rank, size)
    files = context.target.files()
    write = files.write_trial if rank == 0 else _no_write
    # Every rank reports at the same steps with the same metrics (Ray Train's report is
    # collective); TuneReportCallback forwards rank 0's to Tune.
    reporter = Reporter(
        job.record,
        write,
        lambda m: report(m),
        context.write_every_s,
        accelerators=spec.accelerators_per_trial(),
        checkpoint_dir=checkpoint_dir(context, job.trial_id, spec.trial_config(job.params)),
    )
    try:
        result = run_workload(context, job.trial_id, job.params, reporter)
        final, metrics = final_record(reporter.record, result)
        # What the trial ran on, in its record: workers and the devices of the mesh.
        shape = {"workers": float(size), "devices": float(len(result.devices))}
        final = final.model_copy(update={"metrics": {**final.metrics, **shape}})
        again = reporter.reports == 0 or reporter.latest.get(PRIMARY_SCORE) != result.primary_score
        write(final)
        if again:
            reporter.latest.update(metrics)
            report(reporter.tune_metrics())
    finally:
        if on_cpu and size > 1:
            import jax

            jax.distributed.shutdown()  # type: ignore[no-untyped-call]


def join_cpu_processes(rank: int, size: int) -> None:
    """CPU workers: Ray Train does not join ``jax.distributed`` there, so the workers do,
    with rank 0's address (and a free port on its node) broadcast to all."""
    import ray
    from ray.train.collective import broadcast_from_rank_zero

    from tunix_rt.train import sharding

    address = None
    if rank == 0:
        with socket.socket() as probe:
            probe.bind(("", 0))
            port = probe.getsockname()[1]
        address = f"{ray.util.get_node_ip_address()}:{port}"  # type: ignore[no-untyped-call]
    coordinator = broadcast_from_rank_zero(address)
    assert coordinator is not None
    sharding.join_processes(coordinator, size, rank)


def _no_write(record: TrialResult) -> None:
    """Ranks other than 0 write nothing: the record is written once."""
