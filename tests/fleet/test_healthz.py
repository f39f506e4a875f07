from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_healthz_answers_without_login_and_without_secrets(client, account):
    response = client.get("/healthz")
    assert response.status_code == 200
    data = response.json()
    assert data == {"status": "ok", "database": True, "broker": True}


@pytest.mark.django_db
def test_healthz_reports_a_broker_that_is_down(client, settings):
    from fleet.celery import app

    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = settings.CELERY_BROKER_URL
    assert response.status_code == 503
    assert response.json()["broker"] is False
    assert response.json()["database"] is True


@pytest.mark.django_db
def test_healthz_reaches_redis(client, redis_url):
    from fleet.celery import app

    old = app.conf.broker_url
    app.conf.broker_url = redis_url
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = old
    assert response.json()["broker"] is True


@pytest.mark.django_db
def test_healthz_is_get_only(client):
    assert client.post("/healthz").status_code == 405
