"""Production never starts on a development secret: every service, every built-in default,
each refused with the setting named, whichever way the settings were made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.feedback.main import create_app as feedback_app
from services.followup.main import create_app as followup_app
from services.intake.main import create_app as intake_app
from shared.http.app import serve
from shared.settings import DEVELOPMENT_DEFAULTS, DevelopmentDefaults, Settings

SERVICES = {"intake": intake_app, "followup": followup_app, "feedback": feedback_app}
ROOT = Path(__file__).resolve().parents[2]

#: What an operator sets in production: every secret of their own.
OWN = {"AUTH_KEYS": json.dumps(["a" * 40]), "VAULT_MASTER_KEY": "m" * 40,
       "VAULT_OLD_MASTER_KEYS": json.dumps(["o" * 40]), "VAULT_LOOKUP_KEY": "l" * 40,
       "SURVEY_TOKEN_SECRET": "s" * 40}
#: ... and the service's own NATS user (deploy/nats/nats.conf).
NATS_USER = {"NATS_USER": "intake", "NATS_PASSWORD": "n" * 40}


def _env_with_default(name: str) -> dict[str, str]:
    """Production with every secret set, except ``name`` left at (or set to) its default."""
    secret = DEVELOPMENT_DEFAULTS[name]
    env = {**OWN, **NATS_USER, "ENVIRONMENT": "production", "LOG_JSON": "false"}
    is_list = name in ("auth_keys", "vault_old_master_keys")
    env[name.upper()] = json.dumps([secret]) if is_list else secret
    return env


def test_the_operators_own_secrets_are_every_development_default_there_is() -> None:
    assert set(OWN) == {name.upper() for name in DEVELOPMENT_DEFAULTS}
    ok = Settings(environment="production", **{k.lower(): json.loads(v) if v[0] == "[" else v
                                               for k, v in {**OWN, **NATS_USER}.items()})
    assert ok.development_defaults() == []


@pytest.mark.parametrize("service", sorted(SERVICES))
@pytest.mark.parametrize("name", sorted(DEVELOPMENT_DEFAULTS))
def test_a_service_started_in_production_refuses_each_development_default(
        service: str, name: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # From the environment, as `python -m services.<name>.main` starts: a clean refusal.
    for key, value in _env_with_default(name).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as stopped:
        serve(service, SERVICES[service])  # type: ignore[arg-type]
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"sixstep {service}: refusing to start" in err and name.upper() in err
    assert "Traceback" not in err

    # Settings made in code (model_copy skips validation): the service still refuses.
    own = Settings(environment="development", **{
        k.lower(): json.loads(v) if v[0] == "[" else v for k, v in {**OWN, **NATS_USER}.items()})
    secret = DEVELOPMENT_DEFAULTS[name]
    value = ([SecretStr(secret)] if name in ("auth_keys", "vault_old_master_keys")
             else SecretStr(secret))
    made = own.model_copy(update={"environment": "production", name: value})
    with pytest.raises(DevelopmentDefaults) as refused:
        SERVICES[service](made)
    assert refused.value.names == [name.upper()]


def test_the_feedback_process_will_not_sign_survey_links_with_the_built_in_secret() -> None:
    """The finding as it was seen: a real process, production, the survey secret unset."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(
        ("SURVEY_", "AUTH_", "VAULT_", "ENVIRONMENT", "NATS_"))}
    env.update({**OWN, **NATS_USER, "ENVIRONMENT": "production", "LOG_JSON": "false"})
    del env["SURVEY_TOKEN_SECRET"]
    done = subprocess.run([sys.executable, "-m", "services.feedback.main"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "SURVEY_TOKEN_SECRET" in done.stderr and "refusing to start" in done.stderr


def test_production_takes_no_short_ops_token_but_an_empty_one_means_loopback_only() -> None:
    """compose.yaml passes ``OPS_TOKEN=${OPS_TOKEN:-}``: empty is unset, not a short key."""
    own = {k.lower(): json.loads(v) if v[0] == "[" else v
           for k, v in {**OWN, **NATS_USER}.items()}
    with pytest.raises(ValueError, match="OPS_TOKEN needs 32"):
        Settings(environment="production", ops_token="hunter2", **own)
    assert not Settings(environment="production", ops_token="", **own).ops_token
    assert Settings(environment="development", ops_token="hunter2", **own).ops_token


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_started_in_production_will_not_reach_nats_as_anyone(
        service: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Every client reaching NATS's port could forge, purge and read the log: production
    signs in (deploy/nats/nats.conf's users) unless told NATS is secured otherwise."""
    for key in ("NATS_USER", "NATS_PASSWORD", "NATS_CREDS_FILE", "NATS_URL",
                "NATS_SECURED_OTHERWISE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {**OWN, "ENVIRONMENT": "production", "LOG_JSON": "false"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as stopped:
        serve(service, SERVICES[service])  # type: ignore[arg-type]
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"sixstep {service}: refusing to start" in err and "NATS_USER" in err
    assert "NATS_SECURED_OTHERWISE" in err and "Traceback" not in err

    own = {k.lower(): json.loads(v) if v[0] == "[" else v for k, v in OWN.items()}
    # Settings made in code, from development (model_copy skips validation): still refused.
    made = Settings(environment="development", **own).model_copy(
        update={"environment": "production"})
    with pytest.raises(ValueError, match="NATS_USER"):
        SERVICES[service](made)
    # A user and password, a creds file, a user in every URL, or the operator's word: starts.
    for given in ({"nats_user": service, "nats_password": "n" * 40},
                  {"nats_creds_file": "/run/secrets/sixstep.creds"},
                  {"nats_url": f"nats://{service}:{'n' * 40}@nats-1:4222,"
                               f"nats://{service}:{'n' * 40}@nats-2:4222"},
                  {"nats_secured_otherwise": True}):
        assert Settings(environment="production", **own, **given).signs_in_to_nats() \
            or given == {"nats_secured_otherwise": True}
    with pytest.raises(ValueError, match="NATS_USER"):  # one URL of the cluster without
        Settings(environment="production", **own,
                 nats_url=f"nats://{service}:{'n' * 40}@nats-1:4222,nats://nats-2:4222")
    with pytest.raises(ValueError, match="CHANGE-ME"):  # the Secret's placeholder
        Settings(environment="production", **own, nats_user=service, nats_password="CHANGE-ME")
