"""AV-CPNet, the dataset's reference audio-visual baseline: model, loss, data and trainer.

Importing this package imports torch; the CLI imports it only inside its commands.
"""

from emotions_data.baselines.avcpnet.config import BaselineConfig, load_config
from emotions_data.baselines.avcpnet.epoch import TrainingError, evaluate, train_one_epoch
from emotions_data.baselines.avcpnet.loss import EPCELoss, MultiTaskLoss
from emotions_data.baselines.avcpnet.model import AVCPNet
from emotions_data.baselines.avcpnet.predict import predict_videos
from emotions_data.baselines.avcpnet.trainer import FitResult, evaluate_checkpoint, fit

__all__ = [
    "AVCPNet",
    "BaselineConfig",
    "EPCELoss",
    "FitResult",
    "MultiTaskLoss",
    "TrainingError",
    "evaluate",
    "evaluate_checkpoint",
    "fit",
    "load_config",
    "predict_videos",
    "train_one_epoch",
]
