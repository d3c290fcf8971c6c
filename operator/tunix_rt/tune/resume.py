"""Before a session runs Tune: resume the sweep where it was, or start over.

A fresh start archives the earlier run; a resume refuses a changed spec, reports a sweep
that finished already, and checks Ray Tune's state in the store first."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable

from ray import tune

from tunix_rt.api.common import Phase
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.file_names import ARCHIVE_DIR, CHECKPOINTS_DIR, EXPERIMENT_DIR, LOGS_DIR
from tunix_rt.contract.layout import SweepFiles
from tunix_rt.contract.spec_diff import changes_text, spec_changes
from tunix_rt.storage import StoreError
from tunix_rt.tune.durable import drop_experiment, state_problem
from tunix_rt.tune.records import utcnow
from tunix_rt.tune.session import Session, SweepOutcome, SweepRun

KEEP_FOLDERS = (EXPERIMENT_DIR, CHECKPOINTS_DIR, ARCHIVE_DIR, LOGS_DIR)
"""Folders of ``<ns>/<sweep>/`` that a fresh start leaves in place (the rest is archived)."""


def restore_or_archive(session: Session) -> tuple[bool, SweepOutcome | None]:
    """Whether Tune restores the experiment, and the outcome when this session ends here.

    ``--fresh`` drops Ray's state and archives earlier results; a run that cannot be
    restored archives them too. A restorable one continues its log and is checked
    (:func:`check_resume`): a changed spec is refused, a finished sweep reported.
    """
    run, files, say, experiment = session.run, session.files, session.say, session.experiment
    if run.fresh:
        drop_state(session)
        archive_previous(files, say)
    if not tune.Tuner.can_restore(experiment, storage_filesystem=session.fs):
        archive_previous(files, say)
        return False, None
    say.resume()
    early = check_resume(run, files, say)
    if early is not None or not session.in_store:
        return True, early
    problem = state_problem(files, say)
    if problem is None:
        return True, None
    if not files.trials():  # cut before any trial ran: nothing to resume, nothing to lose
        drop_state(session)
        archive_previous(files, say)
        return False, None
    return True, SweepOutcome(ExitCode.FAILED, problem, results_uri=files.uri)


def drop_state(session: Session) -> None:
    """Delete Ray Tune's experiment (a fresh start)."""
    if not session.in_store:
        if os.path.isdir(session.experiment):
            shutil.rmtree(session.experiment)
        return
    store = session.files.store
    if store.scheme == "file":
        path = store.local_path(session.files.layout.experiment_prefix)
        if path is not None and path.is_dir():
            shutil.rmtree(path)
        return
    drop_experiment(store, session.files.layout.experiment_prefix)


def check_resume(
    run: SweepRun, files: SweepFiles, say: Callable[[str], None]
) -> SweepOutcome | None:
    """Before resuming: refuse a changed spec; report a sweep that finished already.

    None: go on and resume. No Ray here.
    """
    stored = _stored_spec(files)
    if stored is not None and _spec_fingerprint(stored) != _spec_fingerprint(run.spec):
        changed = changes_text(spec_changes(stored, run.spec)) or "its fields"
        return SweepOutcome(
            ExitCode.INVALID,
            f"the spec of sweep {run.name!r} changed since its earlier run at {files.uri} "
            f"({changed}); run it with --fresh to start over (earlier results are kept in "
            "archive/), or give it another name",
            results_uri=files.uri,
        )
    try:
        done = files.summary()
    except StoreError:  # as an absent one: the sweep is resumed
        done = None
    if done is None:
        return None
    # Done already: report it as it is. Re-summarising would stamp today's commit on
    # evidence of trials an earlier commit ran.
    say(
        f"sweep {run.name!r} already finished at {done.finished_at}: "
        f"{done.message}; run it with --fresh to start over"
    )
    bundle = files.bundle_uri()
    return SweepOutcome(
        ExitCode.OK if done.phase is Phase.SUCCEEDED else ExitCode.FAILED,
        done.message or done.phase.value,
        done,
        files.uri,
        files.store.uri_for(files.layout.evidence_prefix) if bundle else None,
        bundle,
    )


def _stored_spec(files: SweepFiles) -> SweepSpec | None:
    """The spec an earlier run left; None when it left none. One that cannot be read
    ends this session with the store's error: there is nothing to compare a resume with."""
    seen = len(files.problems)
    stored = files.spec()
    if stored is None and len(files.problems) > seen:
        raise StoreError(files.problems[-1])
    return stored


def archive_previous(files: SweepFiles, say: Callable[[str], None]) -> None:
    """Move an earlier, non-resumable run's records aside (``<sweep>/archive/<time>/``).

    A fresh start must not mix old trials into the new summary, and must not lose them.
    """
    store, layout = files.store, files.layout
    skip = tuple(f"{layout.key(folder)}/" for folder in KEEP_FOLDERS)
    keys = [k for k in store.list(layout.prefix + "/") if not k.startswith(skip)]
    if not keys:
        return
    dest = layout.key(ARCHIVE_DIR, utcnow().strftime("%Y%m%dT%H%M%SZ"))
    for key in keys:
        rel = key[len(layout.prefix) + 1 :]
        store.write_bytes(f"{dest}/{rel}", store.read_bytes(key))
        store.delete(key)
    say(f"moved {len(keys)} file(s) of an earlier run to {store.uri_for(dest)}")


def _spec_fingerprint(spec: SweepSpec) -> str:
    wire = spec.to_wire()
    wire.pop("storage", None)
    wire.pop("cluster", None)
    return json.dumps(wire, sort_keys=True)


def restore_failed(session: Session, exc: BaseException) -> str:
    """The message of a resume that Ray Tune refused: what, where, and the way out."""
    detail = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return (
        f"cannot resume sweep {session.run.name!r} from Ray Tune's state at "
        f"{session.files.store.uri_for(session.files.layout.experiment_prefix)} ({detail}); "
        "its trial records are intact. Run it again with --fresh to start over (earlier "
        "results move to archive/)"
    )
