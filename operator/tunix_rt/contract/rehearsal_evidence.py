"""The one reader of a rehearsal's evidence at its prefix, for the operator and the CLI.

Its error policy is the store layout's (:mod:`tunix_rt.contract.layout`): a file that is
absent reads as ``None``; one that is there but is not a JSON object reads as ``None``
and adds a line naming the file and the problem to ``files.problems``; a store that
cannot be reached raises :class:`~tunix_rt.storage.StoreError`. The operator logs the
problems and reads again at the next poll; the CLI reports them
(:class:`UnreadableEvidence`) and exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunix_rt.contract.layout import RehearsalFiles, bundle_key


class UnreadableEvidence(ValueError):
    """An evidence file is there but unreadable; the message names each file and why."""


@dataclass(frozen=True)
class RehearsalEvidence:
    """What a rehearsal's prefix holds now (failed attempts and archives left out)."""

    uris: list[str]
    """URIs of every current key, sorted as the store lists them."""
    manifest: dict[str, Any] | None
    eval_summary: dict[str, Any] | None
    log_uri: str | None
    bundle_uri: str | None
    problems: list[str]
    """One line for each file that is there but unreadable (file and problem named)."""

    def check(self) -> None:
        """Raise :class:`UnreadableEvidence` when a file was there but unreadable."""
        if self.problems:
            raise UnreadableEvidence("; ".join(self.problems))


def read_rehearsal_evidence(files: RehearsalFiles) -> RehearsalEvidence:
    """The evidence at ``files``' prefix, each file read at most once."""
    layout, store = files.layout, files.store
    keys = files.current_keys()
    first = len(files.problems)
    manifest = _object(files, layout.manifest_key) if layout.manifest_key in keys else None
    summary = _object(files, layout.eval_summary_key) if layout.eval_summary_key in keys else None
    bundle = bundle_key(keys, layout.prefix)
    return RehearsalEvidence(
        uris=[store.uri_for(k) for k in keys],
        manifest=manifest,
        eval_summary=summary,
        log_uri=store.uri_for(layout.log_key) if layout.log_key in keys else None,
        bundle_uri=store.uri_for(bundle) if bundle is not None else None,
        problems=files.problems[first:],
    )


def _object(files: RehearsalFiles, key: str) -> dict[str, Any] | None:
    """The JSON object at ``key``; None (and a problem) when it is not one."""
    data = files.json(key)
    if data is None or isinstance(data, dict):
        return data
    files.problems.append(f"{files.store.uri_for(key)}: not a JSON object")
    return None
