"""primary_score: the one definition used by the trainer, the tuner, the operator and evidence."""

from tunix_rt.scoring.primary import PRIMARY_SCORE, compute_primary_score

__all__ = ["PRIMARY_SCORE", "compute_primary_score"]
