"""``python -m tunix_rt.tune``'s command line: arguments to a :class:`SweepRun`, exit codes."""

from __future__ import annotations

import argparse
import sys

import ray

from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import SweepDocument, load_sweep
from tunix_rt.contract.codec import decode_sweep
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.layout import LOCAL_NAMESPACE
from tunix_rt.storage import StoreError, scrub
from tunix_rt.tune.driver import run_sweep
from tunix_rt.tune.session import SweepRun


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tunix_rt.tune",
        description="Run a tunix-rt Sweep with Ray Tune: trial records and the summary go "
        "to the store as they happen. Rerunning an interrupted local sweep resumes it.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", help="YAML/JSON file: a full Sweep manifest or a bare spec")
    source.add_argument("--spec-b64", help="base64 of the Sweep spec's wire JSON")
    parser.add_argument(
        "--source", help="the file the spec came from, recorded in the evidence manifest"
    )
    parser.add_argument("--storage", help="store URI (default: spec.storage)")
    parser.add_argument(
        "--namespace",
        help=f"namespace in store keys (default: manifest's, else {LOCAL_NAMESPACE!r})",
    )
    parser.add_argument("--name", help="sweep name (default: the manifest's metadata.name)")
    parser.add_argument("--address", help="Ray address, e.g. auto inside a Ray cluster")
    parser.add_argument("--ray-storage", help="folder for Ray's experiment state")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    parser.add_argument(
        "--fresh", action="store_true", help="start over; earlier results move to archive/"
    )
    parser.add_argument(
        "--warm-start-uri",
        help="results of the Sweep spec.warmStartFrom.sweep names (default: "
        "<storage>/<namespace>/<name>)",
    )
    return parser.parse_args(argv)


def load_run(args: argparse.Namespace) -> SweepRun:
    doc: SweepDocument = decode_sweep(args.spec_b64) if args.spec_b64 else load_sweep(args.spec)
    name = args.name or doc.name
    if not name:
        raise ManifestError.of(
            args.spec or "--spec-b64", [("metadata.name", "a bare spec needs --name NAME")]
        )
    return SweepRun(
        spec=doc.spec,
        name=name,
        namespace=args.namespace or doc.namespace or LOCAL_NAMESPACE,
        storage=args.storage,
        address=args.address,
        ray_storage=args.ray_storage,
        fresh=args.fresh,
        num_cpus=args.num_cpus,
        spec_path=args.spec or args.source,
        warm_start_uri=args.warm_start_uri,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run = load_run(args)
    except ManifestError as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        return ExitCode.INVALID
    try:
        outcome = run_sweep(run)
    except (StoreError, ManifestError) as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        return ExitCode.FAILED
    finally:
        if ray.is_initialized() and not args.address:
            ray.shutdown()
    if outcome.exit_code != ExitCode.OK:
        print(f"[tunix-rt] {scrub(outcome.message)}", file=sys.stderr, flush=True)
    return outcome.exit_code
