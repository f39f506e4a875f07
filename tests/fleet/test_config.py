"""Start-up refuses a bad setting with its name; production values pass `check --deploy`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "Zq8#vL2@pR5^wN9&mT4*xB7!cF1%hJ6$" + "s" * 20,
    "ALLOWED_HOSTS": "fleet.example.com",
    "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "DATABASE_URL": "sqlite:////tmp/fleet-deploy-check.sqlite3",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "CACHE_URL": "redis://127.0.0.1:6379/1",
}


def _run(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # DJANGO_ALLOW_ASYNC_UNSAFE belongs to the browser tests' process, never to a deployment
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_check_deploy_is_clean_with_production_values(tmp_path):
    result = _run({**PRODUCTION, "DATA_DIR": str(tmp_path)}, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_about_a_per_process_cache(tmp_path):
    result = _run({**PRODUCTION, "DATA_DIR": str(tmp_path), "CACHE_URL": "locmemcache://"},
                  "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "fleet.W001" in result.stdout + result.stderr
    assert "CACHE_URL" in result.stdout + result.stderr


@pytest.mark.parametrize("name,value", [
    ("SECRET_KEY", ""),
    ("TOKEN_ENCRYPTION_KEYS", ""),
    ("TOKEN_ENCRYPTION_KEYS", "not-a-fernet-key"),
    ("DEBUG", "maybe"),
    ("DATABASE_URL", "nosuchdb://x"),
    ("CELERY_BROKER_URL", "carrier-pigeon://coop"),
    ("SOLAX_VPP_BASE_URL", "ftp://solax"),
    ("SOLAX_EV_BASE_URL", "not a url"),
    ("PUBLIC_BASE_URL", "nowhere"),
    ("TIME_ZONE", "Mars/Olympus"),
    ("SOLAX_READ_TIMEOUT", "soon"),
    ("TRUSTED_PROXY_COUNT", "-1"),
    ("EMAIL_URL", "carrier-pigeon://coop"),
])
def test_a_bad_setting_stops_start_up_naming_the_variable(tmp_path, name, value):
    result = _run({**PRODUCTION, "DATA_DIR": str(tmp_path), name: value}, "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr.splitlines()[-1]
