"""AV-CPNet, the dataset's reference audio-visual baseline: model, loss, data and trainer.

Importing this package imports torch; the CLI imports it only inside its commands.
"""

from emotions_data.baselines.avcpnet.config import BaselineConfig, load_config
from emotions_data.baselines.avcpnet.loss import EPCELoss, MultiTaskLoss
from emotions_data.baselines.avcpnet.model import AVCPNet

__all__ = ["AVCPNet", "BaselineConfig", "EPCELoss", "MultiTaskLoss", "load_config"]
