"""Benchmark of the embedded broker (`make bench`): a longer soak than the one in `make test`.

8 publishing threads, 2,500 messages each (20,000, up to 64 KiB), one consumer process, against
fleet.broker's transport: every message must arrive once and intact. Prints one BENCH JSON line
with the throughput.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.broker_soak import OURS, run_soak


def test_bench_broker_soak(tmp_path: Path) -> None:
    result = run_soak(tmp_path, transport=OURS, threads=8, per_thread=2500, deadline=300)
    print("\nBENCH " + json.dumps({
        "bench": "broker-soak", "transport": OURS, "published": result.published,
        "received": sum(result.received.values()), "missing": result.missing,
        "duplicates": result.duplicates, "corrupt": len(result.corrupt), "seconds": round(result.seconds, 1),
        "per_second": round(sum(result.received.values()) / result.seconds) if result.seconds else 0,
    }))
    assert not result.consumer_error and not result.publish_errors, result.summary()
    assert result.missing == 0 and result.duplicates == 0 and not result.corrupt, result.summary()
