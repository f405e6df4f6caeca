"""Checking the paths a command was given before it starts any work (a bad one is exit code 2)."""

from __future__ import annotations

import os
from pathlib import Path

from codetool_kernel.errors import ConfigError


def check_input(path: Path, option: str, *, kind: str = "any") -> Path:
    """`path` if it exists (and is a file / a directory when `kind` says so), else a `ConfigError`."""
    if not path.exists():
        raise ConfigError(f"{option} {path} does not exist")
    if kind == "file" and not path.is_file():
        raise ConfigError(f"{option} {path} is not a file")
    if kind == "dir" and not path.is_dir():
        raise ConfigError(f"{option} {path} is not a directory")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{option} {path} cannot be read")
    return path


def check_output_file(path: Path, option: str) -> Path:
    """`path` if a file can be written there: not a directory, its folder creatable and writable."""
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a directory; give the path of a file to write")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{option} {path} cannot be written")
    _check_folder_writable(path.parent, option, path)
    return path


def check_output_dir(path: Path, option: str) -> Path:
    """`path` if it is (or can become) a writable directory."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file; give a directory")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{option} {path} cannot be written")
        return path
    _check_folder_writable(path.parent, option, path)
    return path


def _check_folder_writable(folder: Path, option: str, path: Path) -> None:
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{option} {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: {existing} cannot be written")
