"""Config precedence and errors."""

import pytest

from agent.config import config_summary, load_config
from codetool_kernel.errors import ConfigError


def test_defaults_are_the_papers():
    config = load_config(environ={})
    assert (config.search.n, config.search.max_depth, config.search.feedback_chars) == (2, 5, 500)
    assert (config.llm.temperature, config.llm.top_p, config.llm.max_tokens) == (0.9, 0.95, 2048)
    assert config.rm.output_chars == 2000


def test_flags_beat_file_beat_environment(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("llm:\n  model: from-file\n  base_url: http://file/v1\nsearch:\n  n: 3\n")
    env = {"OPENAI_BASE_URL": "http://env/v1", "OPENAI_API_KEY": "sk-env", "CODETOOL_MODEL": "from-env"}
    config = load_config(path, {"llm": {"model": "from-flag"}}, environ=env)
    assert config.llm.model == "from-flag"
    assert config.llm.base_url == "http://file/v1"
    assert config.llm.api_key == "sk-env"
    assert config.search.n == 3


def test_summary_hides_the_key():
    config = load_config(environ={"OPENAI_API_KEY": "sk-secret"})
    assert "sk-secret" not in str(config_summary(config))
    assert "sk-secret" not in repr(config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("search:\n  n: 0\n", "invalid setting search.n"),
        ("search: [1, 2\n", "not valid YAML"),
        ("- 1\n", "mapping at the top level"),
        ("llm:\n  modle: x\n", "invalid setting llm.modle"),
    ],
)
def test_bad_config_file_is_one_clear_line(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path, environ={})
    assert "\n" not in str(info.value)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/codetool.yaml", environ={})
