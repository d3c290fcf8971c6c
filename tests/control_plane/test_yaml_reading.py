"""``tunix-rt validate`` reads YAML as kubectl and the API server do (issue 23, "Parsed
differently from kubectl"): a manifest applied with ``kubectl apply --server-side`` is
stored exactly as ``validate`` parsed it (values and their JSON types), a null where the
CRD has a default is stored as the default, and a typo under ``metadata`` is refused by
both in the same words."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.control_plane import ControlPlane
from tunix_rt.api.manifests import parse_documents
from tunix_rt.api.sweep import Sweep

ROOT = Path(__file__).resolve().parents[2]
NS = "yaml-reading"

# Plain scalars where YAML 1.1 (PyYAML's default), YAML 1.2 and go-yaml v2 (kubectl) part
# ways; kept in trainer.userParams, which the CRD stores as given (preserve-unknown-fields).
SCALARS = """\
sexagesimal: 1:30:00
exponent: 1e-4
exponentUpper: 5E3
leadingDot: .5
trailingDot: 1.
wholeFloat: 2.0
octalOld: 017
octalNew: 0o17
notOctal: 08
hex: 0x1F
binary: 0b101
underscores: 1_000
yesWord: yes
noWord: no
onWord: on
offWord: off
yWord: y
y: the key y is the string "true"
7: the key 7 is the string "7"
capitalYes: Yes
trueWord: TRUE
mixedCase: tRUE
tilde: ~
nullWord: Null
empty:
date: 2001-12-14
stamp: 2001-12-14T21:59:43.10-05:00
overflow: 1e400
notANumber: 1e
signedHex: +0x1F
negativeOctal: -0o17
quoted: "1"
"""


def sweep_text(name: str) -> str:
    body = "".join(f"      {line}\n" for line in SCALARS.splitlines())
    return f"""apiVersion: tunixrt.io/v1alpha1
kind: Sweep
metadata:
  name: {name}
spec:
  trainer:
    backend: python
    entrypoint: linear_arith.train:train
    userParams:
{body}  searchSpace:
    learningRate: {{type: loguniform, low: 1e-4, high: 0.01}}
  maxTrials: null
  algorithm: null
"""


def typed(value: Any) -> Any:
    """``value`` with each scalar paired with its JSON type (1 and 1.0 differ, True and 1
    differ), so that equality means the same JSON."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def apply(plane: ControlPlane, path: Path, ns: str) -> subprocess.CompletedProcess[str]:
    return plane.kubectl("-n", ns, "apply", "--server-side", "-f", str(path), check=False)


@pytest.mark.reliability(
    "input",
    "YAML scalars where YAML 1.1, 1.2 and kubectl differ, applied with kubectl",
    result="validate parses exactly what the API server stores",
)
def test_validate_parses_what_kubectl_sends_and_the_server_stores(
    installed: ControlPlane, ns: str, tmp_path: Path
) -> None:
    path = tmp_path / "scalars.yaml"
    path.write_text(sweep_text("scalars"))
    out = apply(installed, path, ns)
    assert out.returncode == 0, out.stdout + out.stderr
    stored = installed.get_json("-n", ns, "sweep", "scalars")
    (parsed,) = parse_documents(path.read_text(), str(path))
    assert typed(parsed["spec"]["trainer"]["userParams"]) == typed(
        stored["spec"]["trainer"]["userParams"]
    )
    # the ones issue 23 found: a string, a float, booleans, octal
    params = parsed["spec"]["trainer"]["userParams"]
    assert params["sexagesimal"] == "1:30:00" and params["exponent"] == 0.0001
    assert params["yesWord"] is True and params["octalOld"] == params["octalNew"] == 15
    assert params["true"].startswith("the key y") and params["7"].startswith("the key 7")


@pytest.mark.parametrize("case", ["algorithm-null", "maxtrials-null", "search-low-quoted"])
def test_a_null_with_a_default_is_the_default_on_both_sides(
    installed: ControlPlane, ns: str, case: str, tmp_path: Path
) -> None:
    """``maxTrials: null``: the server stores the CRD's default and the model reads the
    same value; ``low: 1e-4`` is the same number on both sides."""
    text = (ROOT / "tests" / "bad_inputs" / "manifests" / f"{case}.yaml").read_text()
    path = tmp_path / f"{case}.yaml"
    path.write_text(text.replace("name: bad", f"name: {case}"))
    out = apply(installed, path, ns)
    assert out.returncode == 0, out.stdout + out.stderr
    stored = installed.get_json("-n", ns, "sweep", case)["spec"]
    (parsed,) = parse_documents(path.read_text(), str(path))
    mine = Sweep.model_validate(parsed).spec.model_dump(mode="json", by_alias=True)
    for key in ("algorithm", "maxTrials", "maxConcurrentTrials", "maxFailedTrials", "seed"):
        assert typed(mine[key]) == typed(stored[key]), key
    low = mine["searchSpace"]["learningRate"]["low"]
    assert low == stored["searchSpace"]["learningRate"]["low"] == 0.0001


def test_a_typo_under_metadata_is_refused_in_kubectls_words(
    installed: ControlPlane, ns: str
) -> None:
    path = ROOT / "tests" / "bad_inputs" / "manifests" / "metadata-unknown-field.yaml"
    out = installed.kubectl("-n", ns, "create", "-f", str(path), check=False)
    assert out.returncode != 0
    said = 'unknown field "metadata.lables"'
    assert said in out.stderr, out.stderr
    cli = str(Path(sys.executable).parent / "tunix-rt")
    mine = subprocess.run([cli, "validate", str(path)], capture_output=True, text=True)
    assert mine.returncode == 2 and said in mine.stdout + mine.stderr
