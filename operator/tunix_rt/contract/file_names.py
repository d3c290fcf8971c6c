"""The names of every file and folder in the store and in an evidence folder, one constant
each, so that the writers, the readers and the checks cannot disagree on a name.

Where each one lives is :mod:`tunix_rt.contract.layout`'s business (its docstring draws
the tree); the evidence folders are drawn in :mod:`tunix_rt.evidence.sweep` and
``docs/evidence.md``. Pure constants: no imports.
"""

from __future__ import annotations

# A sweep's folder: <storage>/<namespace>/<sweep>/.
SPEC_JSON = "spec.json"
"""The spec the driver runs (a rerun with another is refused)."""
TRIALS_DIR = "trials"
"""``trials/<id>.json``: one TrialResult a trial, rewritten as the trial runs."""
SUMMARY_JSON = "summary.json"
"""The sweep's SweepResult, written last: the sweep is over."""
SWEEP_LOG_TXT = "sweep_log.txt"
"""The driver's own lines (also in a sweep's evidence folder)."""
SESSIONS_JSON = "sessions.json"
"""DriverSessions: every driver run and how it ended."""
WARM_START_JSON = "warm_start.json"
"""WarmStartRecord: what ``spec.warmStartFrom`` reused (the trials) and skipped (why);
written before the first trial, copied into the sweep's evidence."""
EVIDENCE_DIR = "evidence"
"""The sweep's evidence folder."""
EXPERIMENT_DIR = "ray"
"""Ray Tune's experiment folder (``RunConfig(name=…)``) under the sweep's prefix."""
TUNER_PKL = "tuner.pkl"
"""Written by Ray Tune when an experiment starts; ``Tuner.can_restore`` looks for it."""
EXPERIMENT_STATE_GLOB = "experiment_state-*.json"
"""Ray Tune's snapshots of trial states and the searcher (the newest one is restored)."""
RAY_RESULT_JSON = "result.json"
"""Ray Tune's per-trial reports, one JSON line each (one of :data:`TRIAL_RESULT_FILES`)."""
TRIAL_RESULT_FILES = ("progress.csv", RAY_RESULT_JSON, "params.json")
"""Ray Tune's own per-trial result files under ``ray/<trial-id>/`` (plus TensorBoard's
``events.out.tfevents.*``)."""
CHECKPOINTS_DIR = "checkpoints"
LOGS_DIR = "logs"

# A rehearsal's folder: <storage>/<namespace>/rehearsals/<name>/.
REHEARSALS_DIR = "rehearsals"
FAILED_DIR = "failed"
"""Subfolder of a rehearsal's prefix with the logs of failed attempts; never pruned."""
FAILURE_JSON = "failure.json"
"""Why an attempt failed, in ``failed/<stamp>/`` beside its log (RehearsalFailure)."""

# Any evidence folder (a rehearsal's prefix, a sweep's evidence/).
RUN_MANIFEST_JSON = "run_manifest.json"
EVAL_SUMMARY_JSON = "eval_summary.json"
EVAL_ROWS_JSONL = "eval_rows.jsonl"
KAGGLE_OUTPUT_LOG_TXT = "kaggle_output_log.txt"
"""A rehearsal's run log."""
SWEEP_SUMMARY_JSON = "sweep_summary.json"
"""A sweep's ``summary.json``, byte for byte, in its evidence (and a rehearsal's that was
promoted from it)."""
BEST_CONFIG_JSON = "best_config.json"
"""The best trial's full trainer config, in a sweep's evidence."""
REPORT_HTML = "report.html"
SHA256SUMS = "SHA256SUMS"
"""The checksum list of an evidence folder (GNU coreutils format)."""
TUNIX_RT_IGNORE = ".tunix-rt-ignore"
"""Names what sits beside the evidence in a folder a person assembled (a README, the
commands that made it, a sweep's folder): one pattern a line, like ``.helmignore``. The
runs never write one, so every file of a run's own folder is evidence."""
SUBMISSION_DIR = "submission"
"""Subfolder of an evidence folder holding the packaged zip (uploaded last)."""
ARCHIVE_DIR = "archive"
"""Subfolder holding earlier runs' files, one folder each, named by their end time."""
