"""The trial workload: dataset, tokenizer, model, train loop, evaluation.

Its backends import JAX, flax and optax (the ``train`` extra), each when first used; the
operator never imports this package.
"""

from tunix_rt.train.backends import run_trial
from tunix_rt.train.data import DatasetInfo, dataset_info
from tunix_rt.train.eval_rows import EvalRow
from tunix_rt.train.result import ModelSource, TrainingTimeout, TrainResult

__all__ = [
    "DatasetInfo",
    "EvalRow",
    "ModelSource",
    "TrainResult",
    "TrainingTimeout",
    "dataset_info",
    "run_trial",
]
