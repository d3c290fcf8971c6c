"""The eager start's hand-over: the RayJob it made for a new object, taken once by ``start``.

The eager start (:func:`~tunix_rt.controller.handlers.eager_start`) creates a new
object's RayJob on its first watch event and records what it did in the object's cache
(:class:`Eager`); ``start`` then takes that RayJob (:func:`take_eager`, no API call) for
this very object and spec, and does the rest (status, Events).
"""

from __future__ import annotations

from dataclasses import dataclass

from tunix_rt.controller.call import Call
from tunix_rt.kuberay.client import Ensured

EAGER_KEY = "tunixrt_eager"


@dataclass(frozen=True)
class Eager:
    """What the eager start did for one version (uid, generation) of one object."""

    uid: str | None
    generation: int | None
    rayjob_name: str | None
    ensured: Ensured | None
    """None: no RayJob (the spec cannot run, or the API said no): ``start`` says why."""


def take_eager(call: Call, rayjob_name: str) -> Ensured | None:
    """The RayJob the eager start created or adopted for this very object and spec, once."""
    eager = call.memo.get(EAGER_KEY)
    if not isinstance(eager, Eager) or eager.ensured is None:
        return None
    if (eager.uid, eager.generation, eager.rayjob_name) != (
        call.meta.get("uid"),
        call.generation,
        rayjob_name,
    ):
        return None
    # Kept, without the RayJob, so that the eager step does not run again for this version:
    # kopf writes a handler's annotations and its status in two patches, and the event of
    # the first still shows no status.
    call.memo[EAGER_KEY] = Eager(eager.uid, eager.generation, rayjob_name, None)
    return eager.ensured
