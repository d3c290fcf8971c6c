"""The run contract: everything that crosses the RayJob boundary, defined once.

The operator and the code inside a RayJob share nothing but the store and the
entrypoint's arguments. Both sides import this package:

* :mod:`~tunix_rt.contract.codec`: the spec codec (``--spec-b64``, the spec annotation);
* :mod:`~tunix_rt.contract.file_names`: the name of every store and evidence file;
* :mod:`~tunix_rt.contract.layout`: the store layout, its readers and writers, one
  error policy;
* :mod:`~tunix_rt.contract.best_trial`: which trial of a sweep is best;
* :mod:`~tunix_rt.contract.exits`: the entrypoints' exit codes;
* :mod:`~tunix_rt.contract.phases`: what makes a run Succeeded or Failed.

A change to any of them is a change here. Pure Python: no JAX, no Ray, no kopf.
"""

from tunix_rt.contract.codec import decode_document, decode_sweep, encode_spec, spec_json
from tunix_rt.contract.exits import ExitCode, exit_code_for
from tunix_rt.contract.layout import (
    LOCAL_NAMESPACE,
    RehearsalFiles,
    RehearsalLayout,
    SweepFiles,
    SweepLayout,
    SweepTarget,
)
from tunix_rt.contract.phases import Verdict, from_summary, judge_rehearsal, judge_sweep

__all__ = [
    "LOCAL_NAMESPACE",
    "ExitCode",
    "RehearsalFiles",
    "RehearsalLayout",
    "SweepFiles",
    "SweepLayout",
    "SweepTarget",
    "Verdict",
    "decode_document",
    "decode_sweep",
    "encode_spec",
    "exit_code_for",
    "from_summary",
    "judge_rehearsal",
    "judge_sweep",
    "spec_json",
]
