"""`python -m solax.simulator --port 8765 --seed N --fleet small|demo|large [--profile NAME] [--token T ...]
[--state FILE]`."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from .config import DEFAULT_TOKEN
from .fleets import FLEETS
from .persistence import start_persistent_simulator
from .profiles import PROFILES
from .testing import start_simulator


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m solax.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fleet", choices=sorted(FLEETS), default="demo")
    parser.add_argument(
        "--token",
        action="append",
        dest="tokens",
        metavar="T",
        help=f"a token to serve (repeatable; default {DEFAULT_TOKEN})",
    )
    parser.add_argument(
        "--profile",
        choices=list(PROFILES),
        default="default",
        help="how the cloud differs: " + "; ".join(f"{p.name}: {p.description}" for p in PROFILES.values()),
    )
    parser.add_argument("--page-cap", type=int, default=None, help="items per page at most (overrides the profile)")
    parser.add_argument("--per-minute", type=int, default=10)
    parser.add_argument("--per-day", type=int, default=10_000)
    parser.add_argument("--command-delay", type=float, default=None, help="seconds until a task id")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument("--state", metavar="FILE", help="keep the cloud in FILE across restarts (JSON)")
    parser.add_argument("--save-every", type=float, default=10.0, help="seconds between saves of --state")
    args = parser.parse_args(argv)
    knobs = {
        "seed": args.seed,
        "fleet": args.fleet,
        "tokens": args.tokens or [DEFAULT_TOKEN],
        "per_minute": args.per_minute,
        "per_day": args.per_day,
    }
    if args.command_delay is not None:
        knobs["command_delay"] = args.command_delay
    if args.page_cap is not None:
        knobs["max_page_size"] = args.page_cap
    started = time.monotonic()
    state, note = None, ""
    if args.state:
        handle, state, restored = start_persistent_simulator(
            args.state, args.save_every, host=args.host, port=args.port, verbose=args.verbose, profile=args.profile,
            **knobs)
        kept = "restored" if restored else "a fresh cloud"
        note = f"  state: {args.state} ({kept}, saved every {args.save_every:g} s)"
    else:
        handle = start_simulator(host=args.host, port=args.port, verbose=args.verbose, profile=args.profile, **knobs)
    took = time.monotonic() - started
    print(f"SolaX Cloud simulator ({args.fleet} fleet, seed {args.seed}, profile {args.profile}, ready in {took:.1f}s)")
    print(f"  URL: {handle.url}")
    print(f"  VPP base URL: {handle.vpp_base_url}")
    print(f"  EV base URL:  {handle.ev_base_url}")
    for token in knobs["tokens"]:
        print(f"  token: {token}")
    print(f"  limits: {args.per_minute}/min, {args.per_day}/day; control API: {handle.url}/_sim/")
    if note:
        print(note)
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, _interrupt)  # a supervisor's stop saves the state like Ctrl-C
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        # Ctrl-C reaches rundemo's children and rundemo then sends SIGTERM too: a second signal must
        # not cut the last save short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if state is not None:
            state.stop()
        handle.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
