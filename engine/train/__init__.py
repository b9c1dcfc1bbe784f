"""The one training loop and the one model-file format.

Split by concern: :mod:`~engine.train.config` (how to train, what comes back),
:mod:`~engine.train.batches` (where batches come from), :mod:`~engine.train.losses`,
:mod:`~engine.train.validation`, :mod:`~engine.train.progress`,
:mod:`~engine.train.state` (what a resume needs), :mod:`~engine.train.checkpoint`,
:mod:`~engine.train.model_file` (saved models and checkpoints: one format) and
:mod:`~engine.train.loop` (``fit``).  Import the public names from here.
"""

from engine.errors import NonFiniteLoss, TrainingError
from engine.train.batches import TensorBatches, time_split
from engine.train.checkpoint import list_checkpoints, load_checkpoint
from engine.train.config import TrainConfig, TrainResult, lr_at
from engine.train.losses import mse_loss, pearson_per_channel, poisson_loss
from engine.train.loop import fit
from engine.train.model_file import MODEL_FORMAT, MODEL_VERSION, load_model, save_model

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "NonFiniteLoss",
    "TensorBatches",
    "fit",
    "time_split",
    "lr_at",
    "load_checkpoint",
    "list_checkpoints",
    "save_model",
    "load_model",
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "pearson_per_channel",
    "poisson_loss",
    "mse_loss",
]
