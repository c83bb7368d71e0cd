"""The typed environment readers that settings.py is built from."""

import pytest

from faceaccess.env import EnvError, env_bool, env_float, env_int, env_list, env_str


def test_unset_and_blank_give_the_default(monkeypatch):
    monkeypatch.delenv("FA_T", raising=False)
    assert env_str("FA_T", "d") == "d"
    assert env_int("FA_T", 7) == 7
    monkeypatch.setenv("FA_T", "   ")
    assert env_str("FA_T") is None
    assert env_bool("FA_T", True) is True
    assert env_float("FA_T", 1.5) == 1.5
    assert env_list("FA_T", ["a"]) == ["a"]


@pytest.mark.parametrize("text, expected", [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                            ("0", False), ("False", False), ("no", False), ("off", False)])
def test_env_bool(monkeypatch, text, expected):
    monkeypatch.setenv("FA_T", text)
    assert env_bool("FA_T", not expected) is expected


def test_values_are_parsed(monkeypatch):
    monkeypatch.setenv("FA_T", "10_485_760")
    assert env_int("FA_T", 0) == 10 * 1024 * 1024
    monkeypatch.setenv("FA_T", "0.25")
    assert env_float("FA_T", 0.0) == 0.25
    monkeypatch.setenv("FA_T", " a, b ,,c ")
    assert env_list("FA_T", []) == ["a", "b", "c"]
    monkeypatch.setenv("FA_T", " text ")
    assert env_str("FA_T") == "text"


@pytest.mark.parametrize("reader, text", [(env_int, "ten"), (env_int, "1.5"), (env_float, "fast"),
                                          (env_bool, "maybe")])
def test_bad_values_name_the_variable(monkeypatch, reader, text):
    monkeypatch.setenv("FA_T", text)
    with pytest.raises(EnvError, match="FA_T"):
        reader("FA_T", 0) if reader is not env_bool else reader("FA_T", False)
