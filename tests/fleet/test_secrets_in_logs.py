"""Secrets stay out of logs and error pages: the EV callback secret (in its URL path) is masked in
every handler the project configures (Django's, gunicorn's, Celery's), stored only as a hash and a
ciphertext, and the DEBUG error page hides the broker, database and cache URLs."""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.test import RequestFactory

from fleet import crypto, log_filters
from fleet.models import SolaxAccount

ROOT = Path(__file__).resolve().parents[2]


# The filter ------------------------------------------------------------------------------------

def _record(msg: str, *args: object, name: str = "django.request") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)


def test_the_filter_masks_a_callback_path_in_the_rendered_message():
    record = _record("%s: %s", "Not Found", "/solax/callback/Zx9-secret_Value/")
    assert log_filters.MaskSecrets().filter(record) is True
    assert record.getMessage() == "Not Found: /solax/callback/…/"
    assert "Zx9" not in record.getMessage()


def test_the_filter_masks_a_gunicorn_access_line_and_a_referer():
    line = '%(h)s "%(r)s" %(s)s "%(f)s"'
    atoms = {"h": "10.0.0.1", "r": "POST /solax/callback/abcDEF123/ HTTP/1.1", "s": "200",
             "f": "https://fleet.example/solax/callback/abcDEF123/?x=1"}
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, line, (), None)
    record.args = atoms  # gunicorn passes a mapping of atoms
    log_filters.MaskSecrets().filter(record)
    assert "abcDEF123" not in record.getMessage()
    assert record.getMessage().count("/solax/callback/…/") == 2


def test_the_filter_masks_tracebacks_and_url_passwords():
    try:
        raise RuntimeError("connecting redis://:broker-pass@redis:6379/0 for /solax/callback/s3cr3t/")
    except RuntimeError:
        record = logging.LogRecord("celery", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    log_filters.MaskSecrets().filter(record)
    text = logging.Formatter().format(record)
    assert "broker-pass" not in text and "s3cr3t" not in text
    assert "redis://:…@redis:6379/0" in text and "/solax/callback/…/" in text


def test_the_filter_never_drops_a_record_and_leaves_other_text_alone():
    record = _record("%s calls sent to %s", 3, "https://www.solaxcloud.com:9443/proxy")
    assert log_filters.MaskSecrets().filter(record) is True
    assert record.getMessage() == "3 calls sent to https://www.solaxcloud.com:9443/proxy"


# Django's handlers, as configured by settings.LOGGING --------------------------------------------

@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the root logger's configured console handler writes (every Django logger propagates there)."""
    handler = next(h for h in logging.getLogger().handlers if any(
        isinstance(f, log_filters.MaskSecrets) for f in h.filters))
    stream = io.StringIO()
    old = handler.setStream(stream)  # type: ignore[attr-defined]
    yield stream
    handler.setStream(old)  # type: ignore[attr-defined]


def test_every_configured_handler_masks_secrets():
    from django.conf import settings

    handlers = settings.LOGGING["handlers"]
    assert handlers and all("mask_secrets" in h.get("filters", []) for h in handlers.values())
    # Django's default handlers (console, mail_admins) would print paths unmasked: none is left
    assert logging.getLogger("django").handlers == [] and logging.getLogger("django").propagate
    assert logging.getLogger("django.server").handlers == []


@pytest.mark.django_db
def test_an_internal_server_error_on_the_callback_url_does_not_log_the_secret(account, console, monkeypatch):
    from django.test import Client

    from fleet.commands import callbacks

    def broken(secret: str, body: bytes) -> None:
        raise RuntimeError("something went wrong")

    monkeypatch.setattr(callbacks, "receive", broken)
    secret = account.get_callback_secret()
    response = Client(raise_request_exception=False).post(f"/solax/callback/{secret}/", data="{}",
                                                          content_type="application/json")
    assert response.status_code == 500
    text = console.getvalue()
    assert "Internal Server Error: /solax/callback/…/" in text
    assert secret not in text


@pytest.mark.django_db
def test_not_found_under_the_callback_path_does_not_log_the_secret(account, console, client):
    secret = account.get_callback_secret()
    assert client.post(f"/solax/callback/{secret}/extra/").status_code == 404
    assert "Not Found: /solax/callback/…/extra/" in console.getvalue()
    assert secret not in console.getvalue()


def test_celery_handlers_get_the_filter():
    from fleet.celery import _mask_secrets

    logger = logging.getLogger("celery-test")
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    try:
        _mask_secrets(logger)
        _mask_secrets(logger)  # twice (worker and task logger set-up): still one filter
        assert [type(f) for f in handler.filters] == [log_filters.MaskSecrets]
    finally:
        logger.removeHandler(handler)


# gunicorn, as the image runs it ------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_image_runs_gunicorn_with_the_masking_configuration():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    compose = (ROOT / "docker" / "compose.yml").read_text()
    for text in (dockerfile, compose):
        assert "python:fleet.gunicorn_conf" in text
        assert "--access-logfile" not in text  # would add a handler of gunicorn's own


@pytest.mark.slow
def test_gunicorn_on_loopback_never_logs_the_callback_secret(tmp_path):
    """A real gunicorn with fleet/gunicorn_conf.py: the access log, gunicorn's error log and Django's
    request log (a 500: the database here has no tables) all mask the secret."""
    port = _free_port()
    secret = "Gq7_secret-Value-" + "z" * 10
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "s" * 50, "ALLOWED_HOSTS": "127.0.0.1",
           "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "DATA_DIR": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}", "SECURE_SSL_REDIRECT": "false",
           "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with out.open("w") as stdout, err.open("w") as stderr:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "python:fleet.gunicorn_conf"],
                                  cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=2)  # noqa: S310 - loopback
                    break
                except urllib.error.HTTPError:
                    break  # it answers (healthz may be 503 without a database)
                except OSError:
                    assert time.monotonic() < deadline, err.read_text()
                    time.sleep(0.2)
            statuses = []
            for method, data in (("GET", None), ("POST", b"{}")):
                request = urllib.request.Request(f"{base}/solax/callback/{secret}/", data=data, method=method,
                                                 headers={"Content-Type": "application/json",
                                                          "Referer": f"{base}/solax/callback/{secret}/"})
                try:
                    statuses.append(urllib.request.urlopen(request, timeout=10).status)  # noqa: S310
                except urllib.error.HTTPError as exc:
                    statuses.append(exc.code)
        finally:
            server.terminate()
            server.wait(timeout=20)
    logs = out.read_text() + err.read_text()
    assert statuses == [405, 500], logs
    assert secret not in logs
    assert len(re.findall(r"/solax/callback/…/", logs)) >= 4, logs  # 2 access lines (path and referer each)
    assert "Internal Server Error: /solax/callback/…/" in logs


# Storage: a hash to look up, a ciphertext to send ------------------------------------------------

@pytest.mark.django_db
def test_the_callback_secret_is_stored_only_as_a_hash_and_a_ciphertext(account):
    secret = account.get_callback_secret()
    assert len(secret) >= 32
    row = SolaxAccount.objects.filter(pk=account.pk).values().get()
    assert not any(secret in str(value) for value in row.values())
    assert row["callback_secret_hash"] == crypto.secret_hash(secret)
    other = SolaxAccount(organization=account.organization, name="Second")
    other.set_token("12345678901234567890")
    other.save()
    assert other.get_callback_secret() != secret


@pytest.mark.django_db
def test_rotating_the_keys_keeps_the_callback_secret(account, settings):
    secret = account.get_callback_secret()
    new_key = Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [new_key, *settings.TOKEN_ENCRYPTION_KEYS]
    call_command("rotate_token_keys", stdout=io.StringIO())
    settings.TOKEN_ENCRYPTION_KEYS = [new_key]
    account.refresh_from_db()
    assert account.get_callback_secret() == secret


@pytest.mark.django_db(transaction=True)
def test_the_migration_hashes_and_encrypts_existing_secrets():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    before, after = [("fleet", "0014_token_digest")], [("fleet", "0015_callback_secret_hash")]
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        org = old.get_model("fleet", "Organization").objects.create(name="Old Org")
        old.get_model("fleet", "SolaxAccount").objects.create(
            organization=org, name="Old", token_ciphertext=crypto.encrypt("1" * 20), token_last4="1111",
            callback_secret="plain-old-secret")
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        # the model as it was at 0015: later migrations add columns the database does not have yet
        account = executor.loader.project_state(after).apps.get_model("fleet", "SolaxAccount").objects.get(
            name="Old")
        assert crypto.decrypt(account.callback_secret_ciphertext) == "plain-old-secret"
        assert account.callback_secret_hash == crypto.secret_hash("plain-old-secret")
        executor = MigrationExecutor(connection)
        executor.migrate(before)  # and back: the plain column returns with its value
        old = executor.loader.project_state(before).apps
        assert old.get_model("fleet", "SolaxAccount").objects.get(name="Old").callback_secret == "plain-old-secret"
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


# The DEBUG error page --------------------------------------------------------------------------

def test_the_debug_error_page_hides_credentials(settings):
    # The page quotes this file's source around the raising frame: the secrets are built, never written.
    s = {name: f"{name}-{'S3' + 'CRET'}" for name in ("broker", "cache", "db", "other")}
    token = "9" * 20
    settings.DEBUG = True
    settings.CELERY_BROKER_URL = f"redis://:{s['broker']}@redis:6379/0"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"redis://:{s['cache']}@redis:6379/1"}}
    settings.SOME_SERVICE = f"https://user:{s['other']}@hooks.example/x"
    request = RequestFactory().post("/settings/accounts/new/", data={"name": "A", "token": token},
                                    DATABASE_URL=f"postgres://fleet:{s['db']}@postgres:5432/fleet",
                                    CACHE_URL=f"redis://:{s['cache']}@redis:6379/1",
                                    CELERY_BROKER_URL=f"redis://:{s['broker']}@redis:6379/0")
    page = _technical_500_page(request)
    assert "CELERY_BROKER_URL" in page and "DATABASE_URL" in page and "RuntimeError" in page
    for secret in (*s.values(), token):
        assert secret not in page, secret


def _technical_500_page(request: object) -> str:
    from django.views.debug import technical_500_response

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        return technical_500_response(request, *sys.exc_info()).content.decode()


def test_the_development_server_log_masks_the_secret(console):
    """runserver (make demo) logs each request on django.server, as WSGIRequestHandler.log_message does."""
    logging.getLogger("django.server").info('"%s" %s %s', "POST /solax/callback/devSECRET42/ HTTP/1.1", "200", "9",
                                            extra={"request": object(), "server_time": "now"})
    assert '"POST /solax/callback/…/ HTTP/1.1" 200 9' in console.getvalue()
    assert "devSECRET42" not in console.getvalue()
