"""A broker soak: threads publish thousands of checksummed messages while a kombu consumer in another
process consumes them; the result says what arrived, how often, and whether it was intact.

Used by tests/fleet/test_broker.py (short) and tests/bench/test_bench_broker.py (long). Against
kombu's own filesystem transport: `python -m tests.support.broker_soak --transport filesystem`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kombu import Connection, Exchange, Producer, Queue

ROOT = Path(__file__).resolve().parents[2]
OURS = "fleet.broker:Transport"
EXCHANGE = Exchange("soak", type="direct", durable=False)
QUEUE = Queue("soak", EXCHANGE, routing_key="soak", durable=False)


def transport_options(root: Path) -> dict[str, Any]:
    """The demo's folder layout (fleet/settings.py) under `root`."""
    folders = {name: root / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
        "polling_interval": 0.05,
    }


def connection(transport: str, root: Path) -> Connection:
    return Connection("filesystem://", transport=transport, transport_options=transport_options(root))


def _body(ident: str, rng: random.Random) -> dict[str, str]:
    # sizes up to 64 KiB, so a half-written file is likely to be seen by a racing reader
    data = rng.randbytes(rng.choice((64, 512, 4096, 65536)) // 2).hex()
    return {"id": ident, "data": data, "sha": hashlib.sha256(data.encode()).hexdigest()}


@dataclass
class SoakResult:
    published: int
    received: Counter[str] = field(default_factory=Counter)
    corrupt: list[str] = field(default_factory=list)
    consumer_error: str = ""
    publish_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def missing(self) -> int:
        return self.published - len(self.received)

    @property
    def duplicates(self) -> int:
        return sum(1 for count in self.received.values() if count > 1)

    def summary(self) -> str:
        rate = sum(self.received.values()) / self.seconds if self.seconds else 0.0
        return (
            f"published {self.published}, received {sum(self.received.values())} "
            f"({len(self.received)} distinct), missing {self.missing}, duplicates {self.duplicates}, "
            f"corrupt {len(self.corrupt)}, consumer error: {self.consumer_error or 'none'}, "
            f"publish errors: {len(self.publish_errors)}, {self.seconds:.1f} s ({rate:.0f} msg/s)"
        )


def run_soak(root: Path, *, transport: str = OURS, threads: int = 4, per_thread: int = 1000,
             deadline: float = 30.0) -> SoakResult:
    """Publish `threads * per_thread` messages while a consumer process consumes; return what came."""
    root.mkdir(parents=True, exist_ok=True)
    out = root / "consumed.json"
    total = threads * per_thread
    started = time.monotonic()
    consumer = subprocess.Popen(
        [sys.executable, "-m", "tests.support.broker_soak", "consume", "--transport", transport,
         "--root", str(root), "--expect", str(total), "--deadline", str(deadline), "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert consumer.stdout is not None
    ready = consumer.stdout.readline()  # the consumer has declared the queue
    if ready.strip() != "ready":
        consumer.kill()
        detail = consumer.stderr.read() if consumer.stderr else ""
        raise RuntimeError(f"the soak consumer did not start: {ready!r} {detail}")
    result = SoakResult(published=total)
    lock = threading.Lock()

    def publish(n: int) -> None:
        rng = random.Random(n)
        try:
            with connection(transport, root) as conn:
                producer = Producer(conn.channel(), exchange=EXCHANGE, routing_key="soak", serializer="json")
                for i in range(per_thread):
                    producer.publish(_body(f"{n}-{i}", rng), declare=[QUEUE])
        except Exception:  # noqa: BLE001 - reported in the result
            with lock:
                result.publish_errors.append(traceback.format_exc())

    workers = [threading.Thread(target=publish, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    try:
        consumer.wait(timeout=deadline + 10)
    except subprocess.TimeoutExpired:
        consumer.kill()
        consumer.wait()
    result.seconds = time.monotonic() - started
    if out.exists():
        data = json.loads(out.read_text())
        result.received = Counter(data["received"])
        result.corrupt = data["corrupt"]
        result.consumer_error = data["error"]
    else:
        detail = consumer.stderr.read()[-2000:] if consumer.stderr else ""
        result.consumer_error = f"no result (exit {consumer.returncode}): {detail}"
    return result


def consume(transport: str, root: Path, expect: int, deadline: float, out: Path) -> int:
    """Consume until `expect` messages came, the deadline passed, or the transport failed."""
    received: list[str] = []
    corrupt: list[str] = []
    error = ""

    def on_message(body: dict[str, str], message: Any) -> None:
        ok = isinstance(body, dict) and hashlib.sha256(body.get("data", "").encode()).hexdigest() == body.get("sha")
        (received if ok else corrupt).append(body["id"] if ok else repr(body)[:200])
        message.ack()

    end = time.monotonic() + deadline
    try:
        with connection(transport, root) as conn, conn.Consumer([QUEUE], callbacks=[on_message], accept=["json"]):
            print("ready", flush=True)
            while len(received) + len(corrupt) < expect and time.monotonic() < end:
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    continue
    except Exception as exc:  # noqa: BLE001 - what stops the consumer is the finding
        error = f"{type(exc).__name__}: {exc}"
    out.write_text(json.dumps({"received": received, "corrupt": corrupt, "error": error}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", nargs="?", default="soak", choices=["soak", "consume"])
    parser.add_argument("--transport", default=OURS)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--per-thread", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.mode == "consume":
        return consume(args.transport, args.root, args.expect, args.deadline, args.out)
    root = args.root or Path(tempfile.mkdtemp(prefix="broker-soak-"))
    result = run_soak(root, transport=args.transport, threads=args.threads, per_thread=args.per_thread,
                      deadline=args.deadline)
    print(f"{args.transport}: {result.summary()}")
    for error in result.publish_errors[:1]:
        print(error)
    return 0 if not (result.missing or result.duplicates or result.corrupt or result.consumer_error) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
