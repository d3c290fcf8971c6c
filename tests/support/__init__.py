"""Shared test helpers, imported as ``support.<module>`` (``tests/`` is on pytest's
``pythonpath``; subprocesses get it through ``subprocess_env``'s PYTHONPATH).

* ``support.net``: a free loopback port and a TCP proxy that cuts connections (faults).
* ``support.s3``: moto's S3 server on loopback.
* ``support.gcs``: gcp-storage-emulator's GCS JSON API on loopback.
* ``support.rayjob_schema``: KubeRay's RayJob CRD as a strict JSON-schema validator.
* ``support.operator``: the operator (kopf) against the kmock Kubernetes emulator.
* ``support.rehearsal``: a stand-in trainer for the rehearsal tests, a tiny real config.
* ``support.evidence``: sample evidence files.
* ``support.trainer``: a tiny trainer config; the committed gemma3-tiny SFT checkpoint.
* ``support.tune_workloads``: stand-in trial workloads for the Tune driver's subprocesses.
* ``support.manifests``: Sweep and Rehearsal manifests (built, written to YAML, validated).
* ``support.sweeps``: sweeps several test files run (the stand-in trainer's grid, a tiny JAX one).
* ``support.cli``: ``tunix-rt`` run in-process at a set terminal width.
* ``support.imports``: what importing some modules brings into a fresh interpreter.
"""
