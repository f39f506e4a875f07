"""Settings for solax-fleet, read from the environment (django-environ), strictly.

Every variable is documented in `.env.example`. A missing or malformed value stops start-up with
an ImproperlyConfigured error that names the variable.
"""

from __future__ import annotations

import base64
import hashlib
import zoneinfo
from pathlib import Path
from urllib.parse import urlparse

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from fleet.base_urls import parse_allowed

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(environ.Env().str("DATA_DIR", default=str(BASE_DIR / "data")))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _bool(name: str, default: bool) -> bool:
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = env.str(name, default=str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}")
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def _float(name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.str(name, default=str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}")
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def _url(name: str, default: str) -> str:
    raw = env.str(name, default=default).rstrip("/")
    parsed = urlparse(raw)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ImproperlyConfigured(f"{name} must be an http(s) URL, not {raw!r}")
    return raw


DEBUG = _bool("DEBUG", False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required unless DEBUG is true")
    SECRET_KEY = "insecure-dev-only-" + "x" * 40  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "csp",
    "template_partials",
    "ninja",  # serves the API docs' Swagger UI from our static files, not a CDN (the CSP allows only 'self')
    "fleet",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "fleet.middleware.RejectMalformedInput",
    "fleet.middleware.ResetZone",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "fleet.middleware.NoStoreForAuthenticated",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "fleet.urls"
WSGI_APPLICATION = "fleet.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "fleet.context_processors.organization",
            ],
            "builtins": ["fleet.templatetags.fleet_errors", "fleet.templatetags.fleet_time"],  # |call_error, |when
        },
    },
]

# Database: SQLite in the data folder by default (WAL, IMMEDIATE transactions so that the
# dispatcher's read-then-write on an account is serialised, and a busy timeout); PostgreSQL in
# production through DATABASE_URL.
_database_url = env.str("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")
if _database_url.split("://", 1)[0] not in {"sqlite", "postgres", "postgresql", "pgsql"}:
    raise ImproperlyConfigured("DATABASE_URL must be a sqlite:// or postgres:// URL")
try:
    DATABASES = {"default": env.db_url_config(_database_url)}
except (environ.ImproperlyConfigured, KeyError, ValueError) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
elif "postgresql" in DATABASES["default"]["ENGINE"]:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The cache holds the login throttle's counters, so it must be shared by every web process:
# CACHE_URL=redis://... is required with more than one process (gunicorn workers, several machines).
# The per-process default only suits DEBUG and single-process demos; `check --deploy` warns about it.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "fleet-login"
LOGIN_REDIRECT_URL = "fleet-dashboard"
LOGOUT_REDIRECT_URL = "fleet-login"

# Failed logins: after this many failures for one username (or one address) within the window,
# further attempts are refused until the window passes.
LOGIN_FAILURE_LIMIT = _int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW = _int("LOGIN_FAILURE_WINDOW", 900, minimum=1)
# Failures for one username from all addresses after which only browsers that have logged in as that
# user before may still try (fleet/throttle.py explains why this never locks the user out).
LOGIN_USERNAME_LIMIT = _int("LOGIN_USERNAME_LIMIT", 100, minimum=1)
# How many reverse proxies in front of the site append to X-Forwarded-For: the client address is the
# n-th entry from the right. 0 (the default) trusts no header and uses the connection's address.
TRUSTED_PROXY_COUNT = _int("TRUSTED_PROXY_COUNT", 0, minimum=0)

# Email: invitations are mailed when EMAIL_URL is set (smtp+tls://user:password@host:587 or
# consolemail://); without it the admin copies the one-time link from the page.
_email_url = env.str("EMAIL_URL", default="")
EMAIL_ENABLED = bool(_email_url)
if _email_url:
    try:
        _email = env.email_url_config(_email_url)
    except (environ.ImproperlyConfigured, KeyError, ValueError) as exc:
        raise ImproperlyConfigured(f"EMAIL_URL is not a valid email URL: {exc}")
    if not _email.get("EMAIL_BACKEND"):
        raise ImproperlyConfigured(f"EMAIL_URL has an unsupported scheme: {_email_url.split(':', 1)[0]!r}")
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
    EMAIL_PORT = _email.get("EMAIL_PORT") or 25
    EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
    EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
    EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
    EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
    EMAIL_TIMEOUT = 10
elif DEBUG:
    # The demo prints mail (alert channels of kind email) on the console.
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="solax-fleet <fleet@localhost>")
# Alert webhooks: refuse hosts that resolve to loopback, private, link-local or reserved addresses
# (SSRF: an admin must not reach the internal network through the server). The demo allows them.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = _bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", DEBUG)
# Days an invitation link stays valid.
INVITATION_DAYS = _int("INVITATION_DAYS", 7, minimum=1)

LANGUAGE_CODE = "en"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(f"TIME_ZONE is not a known timezone: {TIME_ZONE!r}")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Security: strict by default outside DEBUG, so that `check --deploy` is clean in production.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^solax/callback/"]
SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content-Security-Policy (django-csp): scripts only from our own static files, never inline, never
# eval (htmx runs with allowEval off; static/js/fleet.js holds what inline handlers did). Styles allow
# inline attributes: gauges and the schedule timeline set widths and positions with style="...".
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# The SolaX token is encrypted at rest with MultiFernet over these keys (first one encrypts).
_token_keys = env.list("TOKEN_ENCRYPTION_KEYS", default=[])
if not _token_keys:
    if not DEBUG:
        raise ImproperlyConfigured("TOKEN_ENCRYPTION_KEYS is required unless DEBUG is true")
    _token_keys = [base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()]
for _key in _token_keys:
    try:
        if len(base64.urlsafe_b64decode(_key.encode())) != 32:
            raise ValueError
    except ValueError:
        raise ImproperlyConfigured(
            "TOKEN_ENCRYPTION_KEYS must be comma-separated Fernet keys (32 url-safe base64 bytes each)"
        )
TOKEN_ENCRYPTION_KEYS: list[str] = _token_keys

SOLAX_VPP_BASE_URL = _url("SOLAX_VPP_BASE_URL", "https://www.solaxcloud.com:9443/proxy")
SOLAX_EV_BASE_URL = _url("SOLAX_EV_BASE_URL", "https://www.solaxcloud.com/proxyApp/proxy/api")
# Where an account's base URLs may point (its token goes there): URL prefixes, matched on scheme,
# host, port and whole path segments (fleet.base_urls). Default: the two SolaX base URLs (and the
# defaults above, if set elsewhere); in DEBUG also the demo simulator's. https only outside DEBUG.
_default_allowed = list(dict.fromkeys([
    "https://www.solaxcloud.com:9443/proxy", "https://www.solaxcloud.com/proxyApp/proxy/api",
    SOLAX_VPP_BASE_URL, SOLAX_EV_BASE_URL,
    *(["http://127.0.0.1:8765", "http://localhost:8765"] if DEBUG else []),
]))
try:
    SOLAX_ALLOWED_BASE_URLS = parse_allowed(env.list("SOLAX_ALLOWED_BASE_URLS", default=_default_allowed),
                                            debug=DEBUG)
except ValueError as _exc:
    raise ImproperlyConfigured(f"SOLAX_ALLOWED_BASE_URLS: {_exc}")
PUBLIC_BASE_URL = _url("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
# The most an account may be configured to spend: the vendor's published limits per token. A
# contract that allows more (or a fast test) raises them; the form and the ledger both hold to them.
SOLAX_MAX_CALLS_PER_MINUTE = _int("SOLAX_MAX_CALLS_PER_MINUTE", 10, minimum=1)
SOLAX_MAX_CALLS_PER_DAY = _int("SOLAX_MAX_CALLS_PER_DAY", 10_000, minimum=1)
SOLAX_CONNECT_TIMEOUT = _int("SOLAX_CONNECT_TIMEOUT", 5, minimum=1)
SOLAX_READ_TIMEOUT = _int("SOLAX_READ_TIMEOUT", 20, minimum=1)
# The call pipeline. The vendor's minute is 60 s; the pad widens our rolling window so that latency
# between our clock and the vendor's never fits an extra request into its minute. Tests and
# benchmarks shrink the minute together with the simulator's.
SOLAX_MINUTE_SECONDS = _int("SOLAX_MINUTE_SECONDS", 60, minimum=1)
SOLAX_WINDOW_PAD_SECONDS = _float("SOLAX_WINDOW_PAD_SECONDS", 1.0)
SOLAX_PUMP_MAX_WAIT = _float("SOLAX_PUMP_MAX_WAIT", 2.0)
SOLAX_SWEEP_SECONDS = _int("SOLAX_SWEEP_SECONDS", 20, minimum=1)
# A call SENDING for longer than both timeouts plus this grace has lost its worker.
SOLAX_STALE_GRACE_SECONDS = _int("SOLAX_STALE_GRACE_SECONDS", 30, minimum=0)
# Schedules: an edge whose tick comes later than this (worker down) is marked missed, not sent late.
SCHEDULE_GRACE_MINUTES = _int("SCHEDULE_GRACE_MINUTES", 10, minimum=1)
# Day-ahead prices from the ENTSO-E transparency platform (off by default; the token is a secret and
# required once the fetcher is on). Uploads work without it.
ENTSOE_ENABLED = _bool("ENTSOE_ENABLED", False)
ENTSOE_API_TOKEN = env.str("ENTSOE_API_TOKEN", default="")
ENTSOE_API_URL = env.str("ENTSOE_API_URL", default="https://web-api.tp.entsoe.eu/api")
ENTSOE_FETCH_HOUR = _int("ENTSOE_FETCH_HOUR", 14, minimum=0)  # local hour of each zone from which tomorrow is asked
if ENTSOE_FETCH_HOUR > 23:
    raise ImproperlyConfigured("ENTSOE_FETCH_HOUR must be 0-23")
if ENTSOE_ENABLED and not ENTSOE_API_TOKEN:
    raise ImproperlyConfigured("ENTSOE_ENABLED=true needs ENTSOE_API_TOKEN")
# Control commands: how long devices may take to answer before the command expires, the first result
# poll's delay (doubled each poll up to the cap), and how long EV callbacks may stay away before a
# getPileInfo check of the chargers still pending.
COMMAND_EXPIRY_SECONDS = _int("COMMAND_EXPIRY_SECONDS", 900, minimum=10)
COMMAND_POLL_BASE_SECONDS = _float("COMMAND_POLL_BASE_SECONDS", 3.0)
# The first look for a batch's results until an account has taught us its devices' delay.
COMMAND_FIRST_RESULT_SECONDS = _float("COMMAND_FIRST_RESULT_SECONDS", 20.0)
# A result poll due for this long goes before the control sends still queued (results while a fleet
# is being sent).
COMMAND_POLL_AGING_SECONDS = _float("COMMAND_POLL_AGING_SECONDS", 20.0)
COMMAND_POLL_CAP_SECONDS = _float("COMMAND_POLL_CAP_SECONDS", 60.0)
COMMAND_CALLBACK_GRACE_SECONDS = _int("COMMAND_CALLBACK_GRACE_SECONDS", 120, minimum=1)
CALLBACK_MAX_BYTES = _int("CALLBACK_MAX_BYTES", 65536, minimum=1024)
# A confirmation sends once (fleet.accounts.once): how long a shown plan or write form stays usable, and how
# long an identical command (same account, target and action) asks for a second confirmation.
ONCE_KEY_SECONDS = _int("ONCE_KEY_SECONDS", 3600, minimum=60)
ONCE_IDENTICAL_WINDOW_SECONDS = _int("ONCE_IDENTICAL_WINDOW_SECONDS", 600, minimum=0)

# Celery: `filesystem://` in the data folder by default (no service to install), Redis in production.
# The filesystem broker is fleet.broker's transport (atomic publish and claim, malformed files
# dropped), not kombu's own, whose half-written files stop the worker (kombu issue 1551).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.split("://", 1)[0] not in {"filesystem", "redis", "rediss", "memory", "amqp"}:
    raise ImproperlyConfigured(f"CELERY_BROKER_URL has an unsupported scheme: {CELERY_BROKER_URL!r}")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = DATA_DIR / "broker"
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT = "fleet.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # the worker's pidbox, else ./control
        "store_processed": False,
        "polling_interval": 0.1,  # the default 1 s would be most of a control command's click-to-wire
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"
# The beat schedule lives in code. `expires` drops ticks that a busy worker could not start in time,
# so they never pile up behind a long pump.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "calls-sweep": {"task": "fleet.tasks.sweep_calls", "schedule": 2.0, "options": {"expires": 4}},
    "calls-prune": {"task": "fleet.tasks.prune_attempts", "schedule": 3600.0, "options": {"expires": 600}},
    "schedules-tick": {"task": "fleet.tasks.schedules_tick", "schedule": 60.0, "options": {"expires": 55}},
    "prices-tick": {"task": "fleet.tasks.prices_tick", "schedule": 60.0, "options": {"expires": 55}},
    # does nothing unless ENTSOE_ENABLED; asks only for zones still without tomorrow's prices
    "prices-fetch": {"task": "fleet.tasks.fetch_prices", "schedule": 900.0, "options": {"expires": 600}},
    "commands-tick": {"task": "fleet.tasks.command_tick", "schedule": 5.0, "options": {"expires": 10}},
    # The mirror: a periodic sync sized to the budget, and charger status round-robin.
    "fleet-sync": {"task": "fleet.tasks.sync_fleets", "schedule": 300.0, "options": {"expires": 240}},
    "charger-status": {"task": "fleet.tasks.read_charger_status", "schedule": 60.0, "options": {"expires": 50}},
    # Alerts that no event raises or resolves: the day's budget against the coming windows, accounts
    # that send again, deliveries whose task was lost.
    "alerts-evaluate": {"task": "fleet.tasks.evaluate_alerts", "schedule": 60.0, "options": {"expires": 55}},
}

# The mirror. Page size of group and member queries: the simulator's cap (1000) is the largest the
# cloud is known to honour. A periodic sync starts when the last one is older than the interval and
# the budget can pay for it; a group whose count and update time are unchanged is not re-read unless
# its members were last read longer ago than FLEET_SYNC_FULL_HOURS (the cloud does not touch a
# group's update time when one of its members is replaced).
FLEET_SYNC_PAGE_SIZE = _int("FLEET_SYNC_PAGE_SIZE", 1000, minimum=1)
FLEET_SYNC_INTERVAL_MINUTES = _int("FLEET_SYNC_INTERVAL_MINUTES", 360, minimum=1)
FLEET_SYNC_FULL_HOURS = _int("FLEET_SYNC_FULL_HOURS", 24, minimum=1)
# Share of the daily budget that charger status reads (getPileInfo) may spend, in percent.
FLEET_CHARGER_STATUS_SHARE_PERCENT = _int("FLEET_CHARGER_STATUS_SHARE_PERCENT", 10, minimum=0)

# Every handler masks the EV callback secret (request paths) and URL passwords: fleet.log_filters.
# Django's own "django" and "django.server" loggers lose the handlers of Django's default configuration
# (which print request paths unmasked) and propagate to the root's masking handler instead.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"no_4xx_tracebacks": {"()": "fleet.log_filters.ClientErrorsWithoutTraceback"},
                "mask_secrets": {"()": "fleet.log_filters.MaskSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["mask_secrets"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "urllib3": {"level": "WARNING"},
        # Django's default config gives "django" (and "django.server") handlers of their own: every line
        # would print twice and skip the mask; they propagate to the root's masked handler instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["no_4xx_tracebacks"]},
    },
}

# The DEBUG error page hides every setting and environment variable that holds a credential, not only
# the names Django guesses (CELERY_BROKER_URL, DATABASE_URL and CACHE_URL carry passwords).
DEFAULT_EXCEPTION_REPORTER_FILTER = "fleet.error_reports.CredentialsFilter"

Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
