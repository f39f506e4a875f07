"""WSGI application: the cloud's two base paths on one host, plus the `/_sim/` control API.

API requests: GET or POST; parameters from the query string, a form body or a JSON body (merged in that
order, later wins; aliases are folded by `core.fold_aliases`); repeated slashes collapse
(`/proxy//vppgroup/updateById`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from .core import Simulator, fold_aliases
from .endpoints import BY_PATH
from .replies import Reply

RESET_KEY = "solax.sim.reset"  # set in environ when the server must drop the connection
_SLASHES = re.compile("/{2,}")
MAX_BODY = 1 << 20

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def make_app(sim: Simulator) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        reply = dispatch(sim, environ)
        if reply.delay > 0:
            time.sleep(reply.delay)
        if reply.reset:
            # solax.simulator.server turns this into a TCP reset; other servers just drop the request.
            environ[RESET_KEY] = True
            raise ConnectionResetError("simulated connection reset")
        status = f"{reply.status} {HTTPStatus(reply.status).phrase}"
        headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body)))]
        start_response(status, headers)
        return [reply.body]

    return app


def dispatch(sim: Simulator, environ: dict[str, Any]) -> Reply:
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    path = _SLASHES.sub("/", environ.get("PATH_INFO") or "/")
    if len(path) > 1:
        path = path.rstrip("/")
    if path == "/_sim" or path.startswith("/_sim/"):
        return _sim_route(sim, method, path, environ)
    endpoint = BY_PATH.get(path)
    if endpoint is None:
        return Reply.spring_error(404, "Not Found", path, _timestamp())
    if method not in ("GET", "POST"):
        return Reply.spring_error(405, "Method Not Allowed", path, _timestamp())
    try:
        params = read_params(environ)
    except ValueError:
        return Reply.spring_error(400, "Bad Request", path, _timestamp())
    return sim.call(endpoint, params)


def read_params(environ: dict[str, Any]) -> dict[str, Any]:
    """Query string, then form or JSON body; first value of a repeated key. ValueError on a bad body."""
    params: dict[str, Any] = {}
    for key, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
        params.setdefault(key, value)
    body = _body(environ)
    if body.strip():
        ctype = str(environ.get("CONTENT_TYPE", "")).lower()
        if "json" in ctype or body.lstrip().startswith(b"{"):
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("JSON body must be an object")
            params.update(data)
        else:
            form: dict[str, str] = {}
            for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                form.setdefault(key, value)
            params.update(form)
    return params


def _body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    return environ["wsgi.input"].read(min(length, MAX_BODY))


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime())


# -- /_sim/ -----------------------------------------------------------------------------------------------
def _sim_route(sim: Simulator, method: str, path: str, environ: dict[str, Any]) -> Reply:
    name = path[len("/_sim/") :] if path.startswith("/_sim/") else ""
    try:
        params = fold_aliases(read_params(environ))
        if method == "GET":
            getter = _SIM_GET.get(name)
            if getter is None:
                return _sim_error(404, f"no GET /_sim/{name}")
            return Reply.json(getter(sim, params))
        if method == "POST":
            poster = _SIM_POST.get(name)
            if poster is None:
                return _sim_error(404, f"no POST /_sim/{name}")
            return Reply.json(poster(sim, params))
        return _sim_error(405, "GET or POST")
    except KeyError as error:
        return _sim_error(404, f"unknown: {error.args[0] if error.args else error}")
    except (TypeError, ValueError) as error:
        return _sim_error(400, str(error))


def _sim_error(status: int, message: str) -> Reply:
    return Reply.json({"error": message}, status)


def _index(sim: Simulator, p: dict[str, Any]) -> dict[str, Any]:
    return {"get": sorted(_SIM_GET), "post": sorted(_SIM_POST), "token": sim.token, "endpoints": sorted(BY_PATH)}


def _tenants(sim: Simulator, p: dict[str, Any]) -> dict[str, Any]:
    return {token: sim.tenant(token).summary() for token in list(sim.tenants)}


def _add_tenant(sim: Simulator, p: dict[str, Any]) -> dict[str, Any]:
    token = str(p.get("tokenId") or p.get("token") or "").strip()
    if not token:
        raise ValueError("token is required")
    seed = p.get("seed")
    tenant = sim.add_tenant(token, str(p.get("fleet") or "small"), None if seed is None else int(seed))
    return {"token": token, **tenant.summary()}


def _device(sim: Simulator, p: dict[str, Any]) -> dict[str, Any]:
    return sim.device(str(p.get("sn", "")), p.get("tokenId") or None)


def _set_device(sim: Simulator, p: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in p.items() if k not in ("sn", "tokenId", "token")}
    fields = {k: v if k == "soc" else _flag(v) for k, v in fields.items()}
    return sim.set_device(str(p.get("sn", "")), p.get("tokenId") or None, **fields)


def _flag(value: Any) -> bool:
    """JSON true/false, or the strings a form sends."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _reset(sim: Simulator, p: dict[str, Any]) -> dict[str, Any]:
    sim.reset(**p)
    return {"ok": True, "tokens": list(sim.tenants)}


def _configure(sim: Simulator, p: dict[str, Any]) -> dict[str, Any]:
    return sim.configure(**p).public()


_SIM_GET: dict[str, Callable[[Simulator, dict[str, Any]], dict[str, Any]]] = {
    "": _index,
    "health": lambda sim, p: {"ok": True},
    "counters": lambda sim, p: sim.counters(),
    "config": lambda sim, p: sim.config.public(),
    "tenants": _tenants,
    "device": _device,
    "callbacks": lambda sim, p: {"stats": dict(sim.callbacks.stats), "log": list(sim.callbacks.log)},
}
_SIM_POST: dict[str, Callable[[Simulator, dict[str, Any]], dict[str, Any]]] = {
    "reset": _reset,
    "config": _configure,
    "tenants": _add_tenant,
    "device": _set_device,
}
