from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_healthz_answers_without_login_and_without_secrets(client, account):
    response = client.get("/healthz")
    assert response.status_code == 200
    data = response.json()
    assert data == {"status": "ok", "database": True, "broker": True}


def _use_broker(monkeypatch, url):  # type: ignore[no-untyped-def]
    from fleet.celery import app

    # Celery reads CELERY_BROKER_URL from the environment before its own configuration
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    monkeypatch.setattr(app.conf, "broker_url", url)
    monkeypatch.setattr(app.conf, "broker_transport_options", {})


@pytest.mark.django_db
def test_healthz_reports_a_broker_that_is_down(client, monkeypatch):
    _use_broker(monkeypatch, "redis://127.0.0.1:1/0")  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] is False
    assert response.json()["database"] is True


@pytest.mark.django_db
def test_healthz_reaches_redis(client, redis_url, monkeypatch):
    _use_broker(monkeypatch, redis_url)
    response = client.get("/healthz")
    assert response.json()["broker"] is True


@pytest.mark.django_db
def test_healthz_is_get_only(client):
    assert client.post("/healthz").status_code == 405
