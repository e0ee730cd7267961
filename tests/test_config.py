"""Configuration: defaults, TOML, ``INBOXD_*`` variables and CLI overrides in that order
of strength; a bad value stops with a message naming the key, its variable and its file."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest
from builders import write

from daemon.core.config import CONFIG_FILE_NAME, Config, load_config
from daemon.core.config_template import render_config_template
from daemon.core.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No INBOXD_* variable of the outer environment leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("INBOXD_"):
            monkeypatch.delenv(name)
    yield


def toml(root: Path, text: str) -> Path:
    return write(root / CONFIG_FILE_NAME, text)


def test_defaults_without_a_config_file(tmp_path: Path) -> None:
    """With no file and no variables, every setting has its documented default."""
    config = load_config(tmp_path)
    assert config.root == tmp_path.resolve()
    assert config.watch.settle_seconds == 2.0
    assert config.limits.max_json_depth == 32
    assert config.db_path == tmp_path.resolve() / "state" / "inboxd.db"


def test_shipped_config_template_loads_to_the_defaults(tmp_path: Path) -> None:
    """The commented file ``init`` writes is valid TOML that changes nothing."""
    defaults = load_config(tmp_path).model_dump()
    toml(tmp_path, render_config_template())
    assert load_config(tmp_path).model_dump() == defaults


SETTING = re.compile(r"^# (?:[A-Za-z_]+ = |\[)")


def template_settings(template: str) -> list[list[int]]:
    """Line numbers of each commented setting; a commented sub-table header and its keys
    are one setting, since its keys mean nothing without it."""
    groups: list[list[int]] = []
    in_table = False
    for number, line in enumerate(template.splitlines()):
        if not SETTING.match(line):
            in_table = False
        elif line.startswith("# ["):
            groups.append([number])
            in_table = True
        elif in_table:
            groups[-1].append(number)
        else:
            groups.append([number])
    return groups


def uncommented(template: str, numbers: list[int]) -> str:
    lines = template.splitlines()
    for number in numbers:
        lines[number] = lines[number].removeprefix("# ")
    return "\n".join(lines) + "\n"


def test_every_commented_template_line_uncommented_alone_equals_the_default(
    tmp_path: Path,
) -> None:
    """Uncommenting any one setting of the ``init`` template leaves the config at its
    defaults, except the lines marked "(example)", which must still validate."""
    template = render_config_template()
    defaults = load_config(tmp_path).model_dump()
    lines = template.splitlines()
    groups = template_settings(template)
    assert len(groups) > 60
    examples = 0
    for numbers in groups:
        toml(tmp_path, uncommented(template, numbers))
        loaded = load_config(tmp_path).model_dump()
        line = lines[numbers[0]]
        if "(example)" in line or "(example)" in lines[numbers[0] - 1]:
            examples += 1
            continue
        assert loaded == defaults, f"uncommenting {line!r} changed the config"
    assert examples == 9  # the settings whose default is unset


def test_every_setting_is_documented_in_the_template() -> None:
    """Each field of the config model has a description, and the template names each."""
    template = render_config_template()
    for section, info in Config.model_fields.items():
        if section == "root":
            continue
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, pydantic.BaseModel):
            assert f"[{section}]" in template
            for key, field in kind.model_fields.items():
                assert field.description, f"[{section}] {key} has no description"
                assert f"# {key} = " in template or f"[{section}.{key}." in template, key
        else:
            assert info.description, f"{section} has no description"
            assert f"# {section} = " in template


def test_toml_values_are_read_from_the_root(tmp_path: Path) -> None:
    """``<root>/inboxd.toml`` sets top-level keys and sections."""
    toml(
        tmp_path, 'log_level = "debug"\n[watch]\nsettle_seconds = 5\n[limits]\nmax_json_depth = 8\n'
    )
    config = load_config(tmp_path)
    assert (config.log_level, config.watch.settle_seconds) == ("debug", 5.0)
    assert config.limits.max_json_depth == 8


def test_explicit_config_path_wins_over_the_root_file(tmp_path: Path) -> None:
    """``--config`` names the file to read instead of ``<root>/inboxd.toml``."""
    toml(tmp_path, "[watch]\nsettle_seconds = 5\n")
    other = write(tmp_path / "other.toml", "[watch]\nsettle_seconds = 9\n")
    assert load_config(tmp_path, other).watch.settle_seconds == 9.0


def test_env_beats_toml_and_merges_within_a_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``INBOXD_WATCH__SETTLE_SECONDS`` overrides the file; the file's other keys stay."""
    toml(tmp_path, "[watch]\nsettle_seconds = 5\nrescan_seconds = 30\n")
    monkeypatch.setenv("INBOXD_WATCH__SETTLE_SECONDS", "7")
    monkeypatch.setenv("INBOXD_LOG_FORMAT", "console")
    config = load_config(tmp_path)
    assert config.watch.settle_seconds == 7.0
    assert config.watch.rescan_seconds == 30.0
    assert config.log_format == "console"


def test_cli_overrides_beat_env_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command-line option wins over the variable and the file; None means not given."""
    toml(tmp_path, 'log_level = "warning"\n')
    monkeypatch.setenv("INBOXD_LOG_LEVEL", "error")
    assert load_config(tmp_path).log_level == "error"
    assert load_config(tmp_path, overrides={"log_level": "debug"}).log_level == "debug"
    assert load_config(tmp_path, overrides={"log_level": None}).log_level == "error"


def test_root_comes_from_the_argument_then_inboxd_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``--root``, ``INBOXD_ROOT`` names the root (and its config file)."""
    toml(tmp_path, "[watch]\nsettle_seconds = 4\n")
    monkeypatch.setenv("INBOXD_ROOT", str(tmp_path))
    config = load_config()
    assert config.root == tmp_path.resolve() and config.watch.settle_seconds == 4.0


def test_bad_env_value_names_the_key_and_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variable that does not validate stops with its key, variable name and value."""
    monkeypatch.setenv("INBOXD_WATCH__SETTLE_SECONDS", "soon")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    message = str(caught.value)
    assert "watch.settle_seconds" in message
    assert "INBOXD_WATCH__SETTLE_SECONDS" in message
    assert "'soon'" in message


def test_bad_toml_value_names_the_key_and_the_file(tmp_path: Path) -> None:
    """An out-of-range value in the file names key, variable and file."""
    path = toml(tmp_path, "[limits]\nmax_json_depth = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    message = str(caught.value)
    assert "limits.max_json_depth" in message
    assert "INBOXD_LIMITS__MAX_JSON_DEPTH" in message
    assert str(path) in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[watch]\nsettle_secs = 1\n", "watch.settle_secs"),
        ('log_format = "xml"\n', "log_format"),
        ('[embeddings]\nprovider = "openai"\n', "embeddings.provider"),
        ("[dedup]\nthreshold = 1.5\n", "dedup.threshold"),
    ],
)
def test_unknown_or_invalid_keys_are_named(tmp_path: Path, text: str, key: str) -> None:
    """Typos and values outside the allowed set are refused by name."""
    toml(tmp_path, text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(tmp_path)


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    """A file that is not TOML is reported with its path and where it broke."""
    path = toml(tmp_path, "[watch]\nsettle_seconds = = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(path) in str(caught.value)
    assert "not valid TOML" in str(caught.value)
    assert "line 2" in str(caught.value)


def test_missing_explicit_config_file_is_a_config_error(tmp_path: Path) -> None:
    """``--config`` naming a file that does not exist stops with that path."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_config(tmp_path, missing)


def test_config_is_frozen(tmp_path: Path) -> None:
    """Nobody changes the config after it is built."""
    config: Config = load_config(tmp_path)
    with pytest.raises(pydantic.ValidationError):
        config.log_level = "debug"  # type: ignore[misc]


def test_a_price_table_for_one_model_keeps_the_other_models_prices(tmp_path: Path) -> None:
    """``[gemini.prices."<model>"]`` adds or replaces that model's price only."""
    toml(tmp_path, '[gemini.prices."my-model"]\ninput_per_m = 1.0\n')
    prices = load_config(tmp_path).gemini.prices
    assert prices["my-model"].input_per_m == 1.0
    assert prices["gemini-2.5-flash"].output_per_m == 2.50
