"""RayJob entrypoint of a Rehearsal: ``python -m tunix_rt.rehearsal …``.

    python -m tunix_rt.rehearsal (--spec FILE | --spec-b64 B64) --storage URI \
        --namespace NS --name NAME [--source-sweep S --source-trial T] [--out DIR] \
        [--max-steps N] [--timeout-seconds S]

``--spec`` is a Rehearsal manifest, a RehearsalSpec, or a TrainerConfig (YAML or JSON);
``--spec-b64`` the same, base64-encoded (the operator passes the spec with ``trainer``
already resolved, and the source sweep/trial as flags). Progress goes to stderr; the
last line on stdout is the result as JSON (the RehearsalResult, camelCase).
``spec.timeoutSeconds`` (or ``--timeout-seconds``) bounds the run; a failed run uploads
its log and failure.json to ``<prefix>/failed/<UTC stamp>/`` and its error (stderr) says
where. Exit status: 0 done, 1 the run failed, 2 bad arguments or spec, 130 interrupted (Ctrl-C
or SIGTERM; the log is uploaded as a failure first).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from typing import Any

from pydantic import ValidationError

from tunix_rt.api.manifests import read_document
from tunix_rt.api.rehearsal import Rehearsal, RehearsalSpec, SourceTrial
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.contract.codec import SPEC_FLAG, decode_document
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.layout import LOCAL_NAMESPACE
from tunix_rt.reading import MANIFEST, read_file
from tunix_rt.rehearsal.errors import RehearsalError, exit_code
from tunix_rt.rehearsal.plan import plan_from_spec
from tunix_rt.rehearsal.run import run_rehearsal, sigterm_interrupts
from tunix_rt.storage import StoreError, scrub


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tunix_rt.rehearsal",
        description="Run one rehearsal and upload its evidence bundle to the store.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--spec", metavar="FILE", help="Rehearsal manifest/spec or trainer config")
    src.add_argument("--spec-b64", metavar="B64", help="the same, base64-encoded")
    p.add_argument("--storage", help="store URI (default: the spec's storage)")
    p.add_argument("--namespace", default=LOCAL_NAMESPACE, help="namespace for store keys")
    p.add_argument("--name", help="rehearsal name (default: the manifest's)")
    p.add_argument("--source-sweep", help="sweep the config was promoted from")
    p.add_argument("--source-trial", help="trial the config was promoted from")
    p.add_argument("--max-steps", type=int, help="override maxSteps")
    p.add_argument(
        "--timeout-seconds", type=float, metavar="S", help="override spec.timeoutSeconds"
    )
    p.add_argument("--out", metavar="DIR", help="keep the evidence folder here too")
    return p


def _spec(doc: Any) -> tuple[RehearsalSpec, str | None, SourceTrial]:
    """(spec, manifest name, the source trial its annotations name) from a parsed document."""
    if not isinstance(doc, dict):
        raise ValueError("the spec must be a mapping")
    if doc.get("kind") == "Rehearsal" or "metadata" in doc:
        manifest = Rehearsal.model_validate(doc)
        annotated = SourceTrial.annotated(manifest.metadata.annotations)
        return manifest.spec, manifest.metadata.name, annotated
    if "trainer" in doc or "fromSweep" in doc or "from_sweep" in doc:
        return RehearsalSpec.model_validate(doc), None, SourceTrial()
    config = TrainerConfig.model_validate(doc)
    return RehearsalSpec(trainer=config), None, SourceTrial()


def _read_spec(args: argparse.Namespace) -> tuple[Any, bytes, str]:
    """(parsed document, its bytes, config path) from --spec-b64 or --spec."""
    if args.spec_b64 is not None:
        doc = decode_document(args.spec_b64, SPEC_FLAG)
        return doc, base64.b64decode(args.spec_b64, validate=True), "<--spec-b64>"
    raw = read_file(args.spec, MANIFEST)
    return read_document(raw, args.spec), raw, args.spec


def _fail(message: str, code: ExitCode) -> ExitCode:
    print(f"error: {scrub(message)}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        doc, raw, config_path = _read_spec(args)
        spec, manifest_name, annotated = _spec(doc)
    except (OSError, ValueError) as exc:  # ManifestError and ValidationError included
        detail = exc if not isinstance(exc, ValidationError) else exc.errors()[:5]
        return _fail(f"bad spec: {detail}", ExitCode.INVALID)
    if args.timeout_seconds is not None and not 0 < args.timeout_seconds < float("inf"):
        bad = args.timeout_seconds
        return _fail(f"--timeout-seconds must be positive, not {bad}", ExitCode.INVALID)
    name = args.name or manifest_name
    if not name:
        return _fail(
            "--name is required when the spec is not a Rehearsal manifest", ExitCode.INVALID
        )
    command = ["python", "-m", "tunix_rt.rehearsal", *(argv if argv is not None else sys.argv[1:])]
    if args.spec_b64 is not None:  # the spec is in the manifest's config; keep argv short
        command = [a if a != args.spec_b64 else "<b64>" for a in command]
    try:
        plan = plan_from_spec(
            spec,
            name=name,
            namespace=args.namespace,
            storage=args.storage,
            config_path=config_path,
            config_source_sha256=hashlib.sha256(raw).hexdigest(),
            source=SourceTrial(args.source_sweep, args.source_trial).or_else(annotated),
            max_steps=args.max_steps,
            timeout_seconds=args.timeout_seconds,
        )
        with sigterm_interrupts():
            result = run_rehearsal(plan, out_dir=args.out, command=command)
    except RehearsalError as exc:
        return _fail(str(exc), exit_code(exc))
    except StoreError as exc:
        return _fail(str(exc), ExitCode.FAILED)
    print(json.dumps(result.to_wire(), sort_keys=True))
    return ExitCode.OK


if __name__ == "__main__":
    raise SystemExit(main())
