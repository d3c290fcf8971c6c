"""The API server and ``tunix-rt validate`` judge manifests alike: every example is accepted
by both (``kubectl apply --server-side``), and each bad-input manifest that ``validate``
refuses is refused by the server too, or is listed in ``validate_only.yaml`` with the
reason only ``validate`` can know it. A new disagreement fails here until it is fixed in
the CRDs or listed; a listed case the server now refuses fails too (the list stays true)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import yaml

from support.control_plane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "bad_inputs"
NS = "manifest-checks"
PLURALS = {"Sweep": "sweeps", "Rehearsal": "rehearsals"}


def manifests(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        if any(d.get("apiVersion") == "tunixrt.io/v1alpha1" for d in docs):
            found.append(path)
    return found


def server_apply(plane: ControlPlane, doc: dict[str, Any], text: str) -> tuple[bool, str]:
    """``kubectl apply --server-side --dry-run=server`` of ``text`` (which parses to ``doc``)
    as one request: the apply patch with strict field validation (kubectl's default)."""
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    plural = PLURALS.get(str(doc.get("kind")))
    version = str(doc.get("apiVersion"))
    if not name or plural is None or version != "tunixrt.io/v1alpha1":
        return False, "kubectl: no name, or not a tunixrt.io/v1alpha1 kind it knows"
    path = (f"/apis/tunixrt.io/v1alpha1/namespaces/{NS}/{plural}/{name}"
            "?fieldManager=kubectl&fieldValidation=Strict&dryRun=All&force=true")  # fmt: skip
    code, body = plane.request("PATCH", path, text.encode(), "application/apply-patch+yaml")
    return code < 300, str(body.get("message", ""))


def test_every_example_is_accepted_by_the_server_and_by_validate(
    installed: ControlPlane, ns: str
) -> None:
    files = manifests(ROOT / "examples")
    assert len(files) >= 10, files
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("apiVersion") == "tunixrt.io/v1alpha1":
                ok, message = server_apply(installed, doc, yaml.safe_dump(doc))
                assert ok, f"{path.relative_to(ROOT)}: the API server refused it: {message}"
    cli = str(Path(sys.executable).parent / "tunix-rt")
    out = subprocess.run([cli, "validate", *map(str, files)],
                         capture_output=True, text=True, check=False, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def parse_like_kubectl(text: str) -> list[Any]:
    """PyYAML's documents of ``text`` at any nesting depth kubectl's Go parser reads.

    PyYAML's composer recurses a few frames per level, so whether a 500-level file parses
    depended on the recursion limit some earlier import had left (celpy sets 2500): the
    parse runs in its own thread with a deep stack and a fixed limit, the same every run."""
    out: list[Any] = []
    failure: list[BaseException] = []

    def parse() -> None:
        try:
            out.extend(yaml.safe_load_all(text))
        except BaseException as exc:  # handed back to the caller's thread
            failure.append(exc)

    old_stack, old_limit = threading.stack_size(), sys.getrecursionlimit()
    threading.stack_size(512 * 2**20)
    sys.setrecursionlimit(60_000)
    try:
        worker = threading.Thread(target=parse)
        worker.start()
        worker.join()
    finally:
        threading.stack_size(old_stack)
        sys.setrecursionlimit(old_limit)
    if failure:
        raise failure[0]
    return out


def refused_by_validate() -> list[dict[str, Any]]:
    """The corpus cases run as ``tunix-rt validate FILE`` that it refuses today."""
    cases = yaml.safe_load((BAD / "cases.yaml").read_text())
    return [c for c in cases if c.get("file") and not c.get("command") and not c.get("pending")
            and c["exit"] != 0]  # fmt: skip


def test_the_server_refuses_what_validate_refuses_or_the_list_says_why(
    installed: ControlPlane, ns: str
) -> None:
    listed: dict[str, str] = (
        yaml.safe_load((Path(__file__).parent / "validate_only.yaml").read_text()) or {}
    )
    accepted: dict[str, str] = {}
    client_side = 0
    for case in refused_by_validate():
        raw = (BAD / case["file"]).read_bytes()
        try:
            text = raw.decode("utf-8")  # kubectl reads UTF-8 (a UTF-16 file fails there too)
            docs = parse_like_kubectl(text)
        except (yaml.YAMLError, UnicodeDecodeError, ValueError, RecursionError):
            client_side += 1  # kubectl cannot parse it either: refused before any request
            continue
        if len(docs) != 1 or not isinstance(docs[0], dict):
            client_side += 1
            continue
        ok, _ = server_apply(installed, docs[0], text)
        if ok:
            accepted[case["id"]] = case["class"]
    unexplained = sorted(set(accepted) - set(listed))
    stale = sorted(set(listed) - set(accepted))
    assert not unexplained, (
        "accepted by the API server, refused by validate, and not explained in "
        f"validate_only.yaml: {[(i, accepted[i]) for i in unexplained]}"
    )
    assert not stale, f"validate_only.yaml lists cases the server now refuses: {stale}"
    assert all(reason.strip() for reason in listed.values())
