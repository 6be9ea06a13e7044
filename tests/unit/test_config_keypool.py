"""``api_keys``: the forms the loader accepts, and its errors, which never show a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, KeyConfig, load_settings

SECRET_1, SECRET_2 = "sk-pool-secret-one", "sk-pool-secret-two"
ENV = {"K1": SECRET_1, "K2": SECRET_2}


def load(tmp_path: Path, providers: str, env: dict[str, str] | None = None) -> object:
    path = tmp_path / "c.yaml"
    path.write_text("providers:\n" + providers)
    return load_settings(path, env=ENV if env is None else env)


def problems(tmp_path: Path, providers: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, providers, env)
    text = "\n".join(info.value.problems)
    assert SECRET_1 not in text and SECRET_2 not in text
    return text


def test_strings_and_mappings_mix(tmp_path: Path) -> None:
    settings = load(tmp_path, """
  up:
    type: openai
    api_keys:
      - "${K1}"
      - {key: "${K2}", weight: 3, rpm: 60, tpm: 1000, name: backup}
      - ${K1}x
""")
    keys = settings.providers["up"].api_keys  # type: ignore[attr-defined]
    assert keys == (KeyConfig(SECRET_1), KeyConfig(SECRET_2, 3, 60, 1000, "backup"),
                    KeyConfig(SECRET_1 + "x"))
    assert SECRET_1 not in repr(settings) and SECRET_2 not in repr(settings)


def test_api_key_and_api_keys_together_is_an_error(tmp_path: Path) -> None:
    text = problems(tmp_path, """
  up: {type: openai, api_key: "${K1}", api_keys: ["${K2}"]}
""")
    assert "providers.up: set api_key or api_keys, not both" in text


def test_bad_keys_are_named_by_index(tmp_path: Path) -> None:
    text = problems(tmp_path, """
  up:
    type: openai
    api_keys:
      - "${UNSET}"
      - {key: "${K1}", weight: 0, rpm: -1}
""")
    assert "providers.up.api_keys[0].key: empty (is its environment variable set?)" in text
    assert "providers.up.api_keys[1].weight: must be positive" in text
    assert "providers.up.api_keys[1].rpm: cannot be negative (0 means no limit)" in text


def test_malformed_entries(tmp_path: Path) -> None:
    text = problems(tmp_path, """
  up:
    type: openai
    api_keys:
      - {key: "${K2}", name: a, colour: blue}
      - [nested]
""")
    assert "providers.up.api_keys[0].colour: unknown key" in text
    assert "providers.up.api_keys[1]: expected a mapping, got list" in text


def test_duplicate_names(tmp_path: Path) -> None:
    text = problems(tmp_path, """
  up: {type: openai, api_keys: [{key: "${K1}", name: a}, {key: "${K2}", name: a}]}
""")
    assert "providers.up.api_keys[1].name: duplicate key name 'a'" in text


def test_a_wrong_type_does_not_echo_the_value(tmp_path: Path) -> None:
    text = problems(tmp_path, """
  up: {type: openai, api_keys: [{key: {value: "${K1}"}}, {key: "${K2}", weight: "${K2}"}]}
""")
    assert "providers.up.api_keys[0].key: expected a string, got dict" in text
    assert "providers.up.api_keys[1].weight: expected a number, got a string" in text


def test_the_environment_key_replaces_a_pool(tmp_path: Path) -> None:
    settings = load(tmp_path, """
  openai: {type: openai, api_keys: ["${K1}", "${K2}"]}
""", env={**ENV, "OPENAI_API_KEY": "sk-from-env-123"})
    provider = settings.providers["openai"]  # type: ignore[attr-defined]
    assert provider.api_key == "sk-from-env-123" and provider.api_keys == ()


def test_providers_without_keys_take_no_pool(tmp_path: Path) -> None:
    text = problems(tmp_path, """
  up: {type: vertex, project: p, location: us-east5, api_keys: ["${K1}"]}
  fake: {type: mock, api_keys: ["${K2}"]}
""")
    assert "providers.up.api_keys: the vertex provider takes no keys" in text
    assert "providers.fake.api_keys: the mock provider takes no keys" in text
