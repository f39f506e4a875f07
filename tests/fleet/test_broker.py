"""The embedded broker (fleet/broker.py): whole messages, each delivered once, garbage dropped."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from kombu import Connection, Exchange, Producer, Queue

from fleet.broker import MalformedMessage, parse_envelope
from tests.support.broker_soak import OURS, run_soak, transport_options

ROOT = Path(__file__).resolve().parents[2]
QUEUE = Queue("t", Exchange("t", type="direct", durable=False), routing_key="t", durable=False)

GARBAGE = {
    "empty": b"",  # what kombu's own transport leaves for a moment (issue 1551)
    "half": b'{"body": "eyJh',
    "list": b"[1, 2]",
    "no-properties": b'{"body": "", "headers": {}}',
    "not-utf8": b"\xff\xfe\x00",
    "bad-base64": b'{"body": "***", "properties": {"delivery_tag": "x", "body_encoding": "base64"}}',
}


def _garbage(folder: Path, queue: str) -> None:
    for i, (name, raw) in enumerate(GARBAGE.items()):
        (folder / f"0{i}_{name}.{queue}.msg").write_bytes(raw)  # older than any real message


def test_the_soak_delivers_every_message_once_and_intact(tmp_path: Path) -> None:
    # 4 publishing threads, a consumer process; kombu's own transport fails this within a second
    # (JSONDecodeError after a few dozen messages, see the README)
    result = run_soak(tmp_path, transport=OURS, threads=4, per_thread=750, deadline=40)
    assert not result.consumer_error, result.summary()
    assert not result.publish_errors, result.publish_errors[0]
    assert result.corrupt == [], result.summary()
    assert set(result.received) == {f"{t}-{i}" for t in range(4) for i in range(750)}, result.summary()
    assert result.duplicates == 0, result.summary()
    assert not (tmp_path / "rejected").exists() or not any((tmp_path / "rejected").iterdir())
    assert list((tmp_path / "queue").glob("*.msg")) == []


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_parse_envelope_refuses_what_is_not_a_message(name: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_envelope(GARBAGE[name])


def test_a_consumer_drops_malformed_files_and_gets_the_next_message(tmp_path: Path, caplog) -> None:
    options = transport_options(tmp_path)
    got: list[dict[str, str]] = []
    with Connection("filesystem://", transport=OURS, transport_options=options) as conn:
        Producer(conn.channel()).publish({"n": "real"}, exchange=QUEUE.exchange, routing_key="t",
                                         declare=[QUEUE], serializer="json")
        _garbage(tmp_path / "queue", "t")
        consumer = conn.Consumer([QUEUE], callbacks=[lambda body, m: (got.append(body), m.ack())], accept=["json"])
        with caplog.at_level(logging.ERROR, logger="fleet.broker"), consumer:
            conn.drain_events(timeout=5)
    assert got == [{"n": "real"}]
    assert sorted(p.name.split(".")[0] for p in (tmp_path / "rejected").iterdir()) == sorted(
        f"0{i}_{name}" for i, name in enumerate(GARBAGE))
    assert len([r for r in caplog.records if "malformed broker message" in r.getMessage()]) == len(GARBAGE)
    assert list((tmp_path / "queue").iterdir()) == []


def test_kombu_own_transport_stops_on_the_same_garbage(tmp_path: Path) -> None:
    """What the fix is for: kombu's filesystem transport raises out of drain_events (the worker's
    "Unrecoverable error") on an empty message file."""
    options = transport_options(tmp_path)
    with Connection("filesystem://", transport="filesystem", transport_options=options) as conn:
        Producer(conn.channel()).publish({"n": 1}, exchange=QUEUE.exchange, routing_key="t",
                                         declare=[QUEUE], serializer="json")
        (tmp_path / "queue" / "0_empty.t.msg").write_bytes(b"")
        consumer = conn.Consumer([QUEUE], callbacks=[lambda body, m: m.ack()], accept=["json"])
        with consumer, pytest.raises(ValueError):  # json.JSONDecodeError
            conn.drain_events(timeout=5)


def _demo_app(data_dir: Path) -> Celery:
    """A client of the demo's broker in `data_dir`, configured as fleet/settings.py does."""
    app = Celery("probe", set_as_current=False)
    app.conf.update(
        broker_url="filesystem://",
        broker_transport=OURS,
        broker_transport_options=transport_options(data_dir / "broker"),
    )
    return app


def _wait_for(path: Path, text: str, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists() and text in path.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def test_a_running_worker_survives_a_malformed_message(tmp_path: Path) -> None:
    """A real `celery worker` on the demo's broker: garbage files in its queue are logged and dropped,
    and the task published after them still runs."""
    log = tmp_path / "worker.log"
    env = {**os.environ, "DEBUG": "true", "DATA_DIR": str(tmp_path), "CELERY_BROKER_URL": "filesystem://",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "fleet", "worker", "--pool=solo", "--loglevel=INFO",
             "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        assert _wait_for(log, "ready.", 30), log.read_text()
        _garbage(tmp_path / "broker" / "queue", "celery")
        marker = uuid.uuid4().hex
        _demo_app(tmp_path).send_task("celery.accumulate", args=[marker])
        assert _wait_for(log, f"('{marker}',)", 20), log.read_text()
        assert worker.poll() is None, log.read_text()
        text = log.read_text()
        assert text.count("Dropped a malformed broker message") == len(GARBAGE)
        assert "Unrecoverable error" not in text
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)
