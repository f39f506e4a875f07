"""The Simulator: tenants, limits, faults, counters; one `call()` per API request."""

from __future__ import annotations

import copy
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from .callbacks import CallbackDispatcher
from .config import SimConfig
from .endpoints import Context, Endpoint
from .faults import FaultPlan, faulty_reply
from .limits import RateLimiter
from .replies import CODE_TOKEN, MSG_TOKEN, ApiFailure, Reply, failure
from .state import Tenant

# the documents' spellings -> the names the handlers read (`¤t` is VPP doc 3.5's mangled `&current`)
ALIASES = {"systemSwich": "systemSwitch", "token": "tokenId", "\u00a4t": "current"}
_NOT_PAYLOAD = ("tokenId", *ALIASES)
_LIST_KEYS = ("snList", "sns", "ids", "id")


def fold_aliases(params: dict[str, Any]) -> dict[str, Any]:
    """A copy where every alias is also present under its canonical name (unless that is set)."""
    out = dict(params)
    for alias, name in ALIASES.items():
        if alias in out and out.get(name) in (None, ""):
            out[name] = out[alias]
    return out


def canonical_payload(endpoint: str, params: dict[str, Any]) -> str:
    """The ledger key of a control payload: endpoint + params without the token, SN lists sorted."""
    norm: dict[str, str] = {}
    for key, value in params.items():
        if key in _NOT_PAYLOAD:
            continue
        if key in _LIST_KEYS:
            items = value if isinstance(value, list) else str(value).split(",")
            norm[key] = ",".join(sorted(str(item).strip() for item in items if str(item).strip()))
        else:
            norm[key] = str(value).strip()
    return json.dumps({"endpoint": endpoint, **norm}, sort_keys=True, separators=(",", ":"))


class Simulator:
    """A stateful fake SolaX Cloud. Thread-safe; `clock` drives every delay and window."""

    def __init__(
        self, config: SimConfig | None = None, *, clock: Callable[[], float] | None = None, **knobs: Any
    ) -> None:
        base = config or SimConfig()
        base.validate()
        self._initial = copy.deepcopy(base.updated(knobs) if knobs else base)
        self.clock: Callable[[], float] = clock or time.monotonic
        self._lock = threading.RLock()
        self.limiter = RateLimiter()
        self.faults = FaultPlan()
        self.callbacks = CallbackDispatcher(self.clock, lambda: self.config.callback_http_timeout)
        self._specs: dict[str, tuple[str | None, int | None]] = {}  # token -> (fleet, seed); None: config's
        self.config = copy.deepcopy(self._initial)
        self.tenants: dict[str, Tenant] = {}
        self._stats_lock = threading.Lock()
        self._reset_counters()
        for token in self.config.tokens:
            self._specs[token] = (None, None)
        self._build_tenants()

    # -- setup ------------------------------------------------------------------------------------------
    @property
    def token(self) -> str:
        return self.config.tokens[0]

    def _build_tenants(self) -> None:
        cfg = self.config
        self.tenants = {
            token: Tenant(token, fleet or cfg.fleet, cfg.seed if seed is None else seed, cfg, self.clock)
            for token, (fleet, seed) in self._specs.items()
        }

    def _reset_counters(self) -> None:
        with self._stats_lock:
            self.calls: dict[str, Counter[str]] = {}
            self.payloads: Counter[str] = Counter()
            self.unknown_token_calls = 0
            self.rejected = 0

    def add_tenant(self, token: str, fleet: str = "small", seed: int | None = None) -> Tenant:
        """Serve `token` with a fresh fleet (replacing any tenant of that token)."""
        tenant = Tenant(token, fleet, self.config.seed if seed is None else seed, self.config, self.clock)
        with self._lock:
            self._specs[token] = (fleet, seed)
            self.tenants[token] = tenant
        return tenant

    def configure(self, **changes: Any) -> SimConfig:
        """Change knobs at run time (limits, delays, faults, quirks); returns the new config."""
        with self._lock:
            self.config = self.config.updated(changes)
            for tenant in self.tenants.values():
                tenant.config = self.config
            return self.config

    def reset(self, **changes: Any) -> None:
        """Back to the state right after start: startup config (plus `changes`), fleets regenerated from
        their seeds, counters, limits, lockouts, faults and pending callbacks cleared."""
        with self._lock:
            self.config = copy.deepcopy(self._initial)
            if changes:
                self.config = self.config.updated(changes)
            self._specs = {t: s for t, s in self._specs.items() if s != (None, None)}
            self._specs.update(dict.fromkeys(self.config.tokens, (None, None)))
            self._build_tenants()
            self.limiter.unlock()
            self.faults.clear()
            self.callbacks.clear()
            self._reset_counters()

    def close(self) -> None:
        self.callbacks.close()

    # -- the API ----------------------------------------------------------------------------------------
    def call(self, endpoint: Endpoint, params: dict[str, Any]) -> Reply:
        """Answer one API request whose parameters are already merged (query, form, JSON body)."""
        cfg = self.config
        params = fold_aliases(params)
        token = str(params.get("tokenId") or "").strip()
        tenant = self.tenants.get(token)
        if tenant is None:
            with self._stats_lock:
                self.unknown_token_calls += 1
            return Reply.json(failure(MSG_TOKEN, CODE_TOKEN))
        with self._stats_lock:
            per_token = self.calls.setdefault(token, Counter())
            per_token[endpoint.name] += 1
            n = per_token[endpoint.name]
        rate_code = cfg.rate_code_ev if endpoint.base == "ev" else cfg.rate_code_vpp
        verdict = self.limiter.check(token, self.clock(), cfg, rate_code)
        if not verdict.accepted:
            return Reply.json(failure(verdict.exception, verdict.code))
        if endpoint.control:
            key = canonical_payload(endpoint.name, params)
            with self._stats_lock:
                self.payloads[key] += 1
        rule = self.faults.pick(cfg.faults, token, endpoint.name, cfg.seed)
        reply = None
        if rule is None or rule.applies_effect:
            reply = self._run(endpoint, tenant, params, n)
        return reply if rule is None else faulty_reply(rule, reply)  # type: ignore[return-value]

    def _run(self, endpoint: Endpoint, tenant: Tenant, params: dict[str, Any], n: int) -> Reply:
        cfg = self.config

        def quirk(name: str, rate: float) -> bool:
            """Whether this call shows quirk `name`: rolled per (seed, token, endpoint, n-th call)."""
            key = f"{cfg.seed}|{tenant.token}|{endpoint.name}|{n}|{name}"
            return rate > 0 and random.Random(key).random() < rate

        ctx = Context(config=cfg, quirk=quirk, schedule=self.callbacks.schedule, n=n)
        with tenant.lock:
            tenant.commands.settle()
            try:
                return endpoint.handler(tenant, params, ctx)
            except ApiFailure as error:
                with self._stats_lock:
                    self.rejected += 1
                return Reply.json(failure(error.exception, error.code))

    # -- inspection -------------------------------------------------------------------------------------
    def tenant(self, token: str | None = None) -> Tenant:
        tenant = self.tenants[token or self.token]
        with tenant.lock:
            tenant.commands.settle()
        return tenant

    def device(self, sn: str, token: str | None = None) -> dict[str, Any]:
        """State of an inverter (by inverter or dongle SN) or a charger, brought up to now."""
        tenant = self.tenant(token)
        now = self.clock()
        with tenant.lock:
            inverter = tenant.inverters.get(tenant.dongles.get(sn, sn))
            if inverter is not None:
                inverter.advance(now, self.config.time_scale)
                return {"kind": "inverter", **inverter.snapshot()}
            charger = tenant.chargers.get(sn)
            if charger is not None:
                charger.advance(now, self.config.time_scale)
                return {"kind": "charger", **charger.snapshot()}
        raise KeyError(sn)

    def set_device(self, sn: str, token: str | None = None, **fields: Any) -> dict[str, Any]:
        """Flip `online`, `plugged` (chargers) or set `soc` (inverters) of a device."""
        tenant = self.tenant(token)
        allowed = {"online", "plugged", "soc"}
        if set(fields) - allowed:
            raise ValueError(f"settable fields: {', '.join(sorted(allowed))}")
        with tenant.lock:
            device: Any = tenant.inverters.get(tenant.dongles.get(sn, sn)) or tenant.chargers.get(sn)
            if device is None:
                raise KeyError(sn)
            for name, value in fields.items():
                if not hasattr(device, name):
                    raise ValueError(f"{name} does not apply to {sn}")
                setattr(device, name, float(value) if name == "soc" else bool(value))
        return self.device(sn, token)

    def counters(self) -> dict[str, Any]:
        now = self.clock()
        with self._stats_lock:
            # every served token, called or not, plus tokens whose tenant was replaced meanwhile
            calls = {token: dict(self.calls.get(token, {})) for token in [*self.tenants, *self.calls]}
            payloads = dict(self.payloads)
            unknown, rejected = self.unknown_token_calls, self.rejected
        tokens = {
            token: {"calls": counts, "total": sum(counts.values()), **self.limiter.snapshot(token, now)}
            for token, counts in calls.items()
        }
        return {
            "tokens": tokens,
            "unknown_token_calls": unknown,
            "rejected": rejected,
            "payloads": payloads,
            "duplicates": sum(1 for count in payloads.values() if count > 1),
            "faults": dict(self.faults.fired),
            "callbacks": {**self.callbacks.stats, "pending": self.callbacks.pending()},
        }
