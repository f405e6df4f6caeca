"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared benchmark data (`../shared/data` from the repo root)."""
    assert DATA.is_dir(), f"benchmark data not found at {DATA}"
    return DATA


@pytest.fixture(scope="session")
def stb_g1_file(data_dir: Path) -> Path:
    return data_dir / "stabletoolbench" / "filter_test_instruction" / "G1_instruction.json"


@pytest.fixture(scope="session")
def tmdb_spec(data_dir: Path) -> Path:
    return data_dir / "restbench" / "tmdb_spec.json"


@pytest.fixture(scope="session")
def tmdb_queries(data_dir: Path) -> Path:
    return data_dir / "restbench" / "tmdb_queries.json"


@pytest.fixture(scope="session", autouse=True)
def quiet_logs() -> None:
    """Structured logs at warning level, as the command-line entry points configure them."""
    from codetool_kernel.logging import configure_logging

    configure_logging(level="WARNING")


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 checkpoint with a locally trained tokenizer and chat template."""
    from tests.support.tiny_lm import build_tiny_lm

    return build_tiny_lm(tmp_path_factory.mktemp("tiny_lm"))
