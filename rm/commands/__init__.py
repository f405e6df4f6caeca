"""The `collect`, `label` and `train` commands of `python -m rm` (registered in `rm.__main__`)."""

from rm.commands.collect import collect_command
from rm.commands.label import label_command
from rm.commands.train import train_command

__all__ = ["collect_command", "label_command", "train_command"]
