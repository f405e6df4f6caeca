"""The `label` and `train` commands of `python -m rm` (registered in `rm.cli`)."""

from rm.commands.label import label_command
from rm.commands.train import train_command

__all__ = ["label_command", "train_command"]
