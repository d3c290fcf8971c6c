"""Every file and store object the project reads goes through here, within limits.

* :mod:`~tunix_rt.reading.limits`: the caps per kind of input (:data:`MANIFEST`,
  :data:`RECORD`), :class:`ReadError`, :func:`clip` (a bad value is quoted by its first
  80 characters and its size, never whole);
* :mod:`~tunix_rt.reading.kube_yaml`: YAML as kubectl and the API server read it
  (go-yaml v2's scalars), composed without recursion, aliases measured before expanding;
  ``kube_yaml.dump`` writes YAML that kubectl reads back as written;
* :mod:`~tunix_rt.reading.json_reading`: JSON within a size and depth cap;
* :mod:`~tunix_rt.reading.zips`: zip entries checked against size and ratio caps before
  they are inflated.

Pure Python plus PyYAML (libyaml when present): no pydantic models here, so every layer
(the API models, the store, the evidence) can use it.
"""

from tunix_rt.reading.json_reading import load_json
from tunix_rt.reading.kube_yaml import load_all, scalar
from tunix_rt.reading.limits import MANIFEST, RECORD, Limits, ReadError, clip, read_file

__all__ = [
    "MANIFEST",
    "RECORD",
    "Limits",
    "ReadError",
    "clip",
    "load_all",
    "load_json",
    "read_file",
    "scalar",
]
