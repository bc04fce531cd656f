"""The local stack manager refuses bad settings before starting anything."""

import pytest

from scripts import stack


@pytest.mark.parametrize("value", ["-1", "101", "abc", "", "50.5"])
def test_bad_p_value_is_refused_with_the_renderers_message(value):
    with pytest.raises(SystemExit) as refusal:
        stack.check_settings({**stack.DEFAULTS, "P_VALUE": value})
    assert "P_VALUE must be an integer from 0 to 100" in str(refusal.value)


@pytest.mark.parametrize("value", ["0", "1", "50", "99", "100"])
def test_good_p_value_passes(value):
    stack.check_settings({**stack.DEFAULTS, "P_VALUE": value})


def test_environment_wins_over_dotenv_and_defaults(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("# comment\nMONGO_DB=from_dotenv\nP_VALUE=30\n")
    monkeypatch.setattr(stack, "ROOT", tmp_path)
    monkeypatch.setenv("P_VALUE", "70")
    monkeypatch.delenv("MONGO_DB", raising=False)
    env = stack.stack_env()
    assert env["P_VALUE"] == "70"
    assert env["MONGO_DB"] == "from_dotenv"
    assert env["GATEWAY_PORT"] == stack.DEFAULTS["GATEWAY_PORT"]


def test_local_mongo_is_started_only_for_a_local_uri_nobody_answers(monkeypatch):
    monkeypatch.setattr(stack, "port_open", lambda host, port: False)
    assert stack._local_mongo_wanted({"MONGO_URI": "mongodb://localhost:27017"})
    assert not stack._local_mongo_wanted({"MONGO_URI": "mongodb://db.internal:27017"})
    monkeypatch.setattr(stack, "port_open", lambda host, port: True)
    assert not stack._local_mongo_wanted({"MONGO_URI": "mongodb://127.0.0.1:27017"})
