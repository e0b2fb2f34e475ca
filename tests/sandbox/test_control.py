"""The sandbox cannot be driven, or made to forge webhooks, by whoever reaches it: its control
endpoints need a token (or an explicit open demo), and it signs webhooks only with a secret it
was given — never Waypost's WHATSAPP_APP_SECRET picked up from the environment."""

import pytest
import requests

from sandbox.cli import config_from


def test_it_refuses_to_start_without_a_control_token():
    with pytest.raises(ValueError, match="--control-token"):
        config_from([], environ={})
    assert config_from(["--open-control"], environ={}).open_control
    assert config_from([], environ={"SANDBOX_CONTROL_TOKEN": "t"}).control_token == "t"


def test_it_never_signs_with_the_app_secret_it_was_not_given():
    environ = {"WHATSAPP_APP_SECRET": "the-production-secret", "SANDBOX_CONTROL_TOKEN": "t"}
    with pytest.raises(ValueError, match="--app-secret"):
        config_from(["--webhook-url", "http://127.0.0.1:1/webhooks/whatsapp"], environ=environ)
    config = config_from(
        ["--webhook-url", "http://127.0.0.1:1/hook", "--app-secret", "given"], environ=environ
    )
    assert config.app_secret == "given"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_sandbox/messages"),
        ("GET", "/_sandbox/config"),
        ("POST", "/_sandbox/config"),
        ("POST", "/_sandbox/reset"),
        ("POST", "/_sandbox/inbound"),
        ("POST", "/_sandbox/user_preferences"),
        ("POST", "/_sandbox/numbers"),
    ],
)
def test_the_control_endpoints_need_the_token(sandbox_process, method, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        answer = requests.request(
            method, sandbox_process.url + path, json={}, headers=headers, timeout=5
        )
        assert answer.status_code == 401, (path, answer.text)
    assert requests.get(sandbox_process.url + "/_sandbox/ping", timeout=5).ok  # liveness only


def test_the_token_cannot_be_changed_at_run_time(sandbox_process):
    answer = sandbox_process.post("/_sandbox/config", {"control_token": "mine"})
    assert answer.status_code == 400
    answer = sandbox_process.post("/_sandbox/config", {"open_control": True})
    assert answer.status_code == 400
    assert sandbox_process.get("/_sandbox/config").json()["control_token"] == "***"
