"""Fine-tuning the generative PRM on `rm label`'s export (`python -m rm train`).

torch, transformers and peft are the optional `train` extra; they load when training starts.
"""

from rm.train.config import TrainConfig
from rm.train.llamafactory import llamafactory_recipe
from rm.train.metrics import pair_metrics
from rm.train.trainer import REPORT_FILE, TrainReport, train_prm

__all__ = ["REPORT_FILE", "TrainConfig", "TrainReport", "llamafactory_recipe", "pair_metrics", "train_prm"]
