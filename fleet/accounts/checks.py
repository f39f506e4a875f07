"""System checks for settings that only matter in production (`manage.py check --deploy`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

# Cache backends whose data lives in one process (or nowhere): each gunicorn worker would keep its
# own login-failure counts, multiplying the attempts an attacker gets by the number of workers.
PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


@register(Tags.security, Tags.caches, deploy=True)
def check_shared_cache(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn when the default cache is per-process outside DEBUG (fleet.W001)."""
    if settings.DEBUG:
        return []
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend not in PER_PROCESS_CACHES:
        return []
    return [Warning(
        f"The default cache ({backend.rsplit('.', 1)[-1]}) is per-process, so the login throttle counts "
        "failures in each web process separately.",
        hint="Set CACHE_URL to a cache every process shares, e.g. redis://127.0.0.1:6379/1.",
        id="fleet.W001",
    )]
