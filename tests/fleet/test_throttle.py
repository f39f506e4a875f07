"""Login throttling behind a proxy, across processes, and out of an outsider's reach (issue 11, item 7)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client

from fleet.accounts import checks, throttle

ROOT = Path(__file__).resolve().parents[2]
PROXY = "10.0.0.2"
ATTACKER = "203.0.113.9"
ADMIN_HOME = "198.51.100.7"
ADA_PASSWORD = "pw-ada-9x!"


@pytest.fixture(autouse=True)
def _clear_throttle(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; the counts still apply
    cache.clear()
    yield
    cache.clear()


def _login(client: Client, username: str, password: str, remote: str, forwarded: str | None = None):  # type: ignore[no-untyped-def]
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.post("/login/", {"username": username, "password": password}, **extra)


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# The client address ----------------------------------------------------------------------------

@pytest.mark.parametrize("count,forwarded,remote,expected", [
    (0, "1.2.3.4", PROXY, PROXY),                       # no proxy trusted: the header is ignored
    (1, "1.2.3.4", PROXY, "1.2.3.4"),
    (1, "6.6.6.6, 1.2.3.4", PROXY, "1.2.3.4"),          # the client's own entries are left of ours
    (2, "6.6.6.6, 1.2.3.4, 10.0.0.1", PROXY, "1.2.3.4"),
    (2, "1.2.3.4", PROXY, PROXY),                       # fewer hops than proxies: not trusted
    (1, "not-an-address", PROXY, PROXY),
    (1, "2001:db8:1:2:3:4:5:6", PROXY, "2001:db8:1:2:3:4:5:6"),
    (0, None, "2001:db8::1", "2001:db8::1"),
])
def test_client_address_counts_trusted_proxies_from_the_right(rf, settings, count, forwarded, remote, expected):
    settings.TRUSTED_PROXY_COUNT = count
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    assert throttle.client_address(rf.post("/login/", **extra)) == expected


@pytest.mark.django_db
def test_an_ipv6_client_is_counted_by_its_64(settings, admin_user):
    settings.LOGIN_FAILURE_LIMIT = 3
    for i in range(3):  # one host, a fresh address of its /64 per guess
        _login(Client(), "ada", "nope", f"2001:db8:1:2::{i + 1:x}")
    assert b"Too many failed attempts" in _login(Client(), "ada", ADA_PASSWORD, "2001:db8:1:2::ff").content
    assert _login(Client(), "ada", ADA_PASSWORD, "2001:db8:1:3::1").status_code == 302


# Behind a proxy --------------------------------------------------------------------------------

@pytest.mark.django_db
def test_failures_from_one_client_behind_the_proxy_do_not_lock_out_another(settings, admin_user):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOGIN_FAILURE_LIMIT = 5
    attacker = Client()
    for _ in range(20):
        _login(attacker, f"guess-{uuid.uuid4().hex[:8]}", "nope", PROXY, ATTACKER)
    # the attacker's address is now refused, even with a right password
    assert b"Too many failed attempts" in _login(attacker, "ada", ADA_PASSWORD, PROXY, ATTACKER).content
    assert not _logged_in(attacker)
    # the real admin comes through the same proxy from elsewhere and gets in
    admin = Client()
    response = _login(admin, "ada", ADA_PASSWORD, PROXY, ADMIN_HOME)
    assert response.status_code == 302
    assert _logged_in(admin)


@pytest.mark.django_db
def test_a_spoofed_forwarded_for_is_ignored_without_trusted_proxies(settings, admin_user):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.LOGIN_FAILURE_LIMIT = 3
    attacker = Client()
    for i in range(3):
        _login(attacker, "ada", "nope", ATTACKER, f"192.0.2.{i}")
    response = _login(attacker, "ada", ADA_PASSWORD, ATTACKER, "192.0.2.99")
    assert b"Too many failed attempts" in response.content
    assert not _logged_in(attacker)


@pytest.mark.django_db
def test_a_spoofed_entry_left_of_the_proxys_is_ignored(settings, admin_user):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOGIN_FAILURE_LIMIT = 3
    attacker = Client()
    for i in range(3):
        _login(attacker, "ada", "nope", PROXY, f"192.0.2.{i}, {ATTACKER}")
    response = _login(attacker, "ada", ADA_PASSWORD, PROXY, f"192.0.2.99, {ATTACKER}")
    assert b"Too many failed attempts" in response.content


# An outsider cannot lock a user out ------------------------------------------------------------

@pytest.mark.django_db
def test_failures_from_many_addresses_do_not_lock_the_user_out(settings, admin_user):
    settings.LOGIN_FAILURE_LIMIT = 5
    for i in range(5):
        _login(Client(), "ada", "nope", f"192.0.2.{i}")
    admin = Client()
    assert _login(admin, "ada", ADA_PASSWORD, ADMIN_HOME).status_code == 302
    assert _logged_in(admin)


@pytest.mark.django_db
def test_an_attack_on_one_username_never_stops_the_users_own_browser(settings, admin_user):
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_USERNAME_LIMIT = 20
    admin = Client()
    assert _login(admin, "ada", ADA_PASSWORD, ADMIN_HOME).status_code == 302  # gets the device cookie
    assert throttle.DEVICE_COOKIE in admin.cookies
    admin.post("/logout/")
    # a distributed attack: 5 guesses from each of 5 addresses reaches the username limit
    for i in range(5):
        for _ in range(6):  # the 6th is refused by the pair limit and not counted
            _login(Client(), "ada", "nope", f"192.0.2.{i}")
    # a new device with the right password waits for the window ...
    stranger_device = Client()
    assert b"Too many failed attempts" in _login(stranger_device, "ada", ADA_PASSWORD, "198.51.100.8").content
    assert not _logged_in(stranger_device)
    # ... but the user's own browser still gets in, from home or from anywhere else
    assert _login(admin, "ada", ADA_PASSWORD, ADMIN_HOME).status_code == 302
    assert _logged_in(admin)


@pytest.mark.django_db
def test_one_address_adds_at_most_the_pair_limit_to_a_usernames_count(settings, admin_user):
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_USERNAME_LIMIT = 6
    for _ in range(50):
        _login(Client(), "ada", "nope", ATTACKER)
    assert cache.get(throttle._username_key("ada")) == 5
    newcomer = Client()  # no device cookie, another address: the username limit is not reached
    assert _login(newcomer, "ada", ADA_PASSWORD, ADMIN_HOME).status_code == 302


@pytest.mark.django_db
def test_a_forged_device_cookie_does_not_count(settings, admin_user):
    settings.LOGIN_USERNAME_LIMIT = 1
    _login(Client(), "ada", "nope", ATTACKER)
    forger = Client()
    forger.cookies[throttle.DEVICE_COOKIE] = throttle._user_hash("ada")  # unsigned
    assert b"Too many failed attempts" in _login(forger, "ada", ADA_PASSWORD, ADMIN_HOME).content


@pytest.mark.django_db
def test_usernames_that_normalise_alike_share_a_counter(settings, admin_user):
    settings.LOGIN_FAILURE_LIMIT = 2
    attacker = Client()
    _login(attacker, "ADA", "nope", ATTACKER)
    _login(attacker, "ａｄａ", "nope", ATTACKER)  # fullwidth: NFKC makes it "ada"
    assert b"Too many failed attempts" in _login(attacker, "ada", ADA_PASSWORD, ATTACKER).content


# Shared between processes ----------------------------------------------------------------------

@pytest.fixture
def redis_cache(settings, redis_url):  # type: ignore[no-untyped-def]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    cache.clear()  # only the test's own Redis db
    yield redis_url
    cache.clear()


@pytest.mark.services
@pytest.mark.django_db
def test_failures_in_another_process_count_here(settings, redis_cache, admin_user):
    settings.LOGIN_FAILURE_LIMIT = 5
    # another web process (a second gunicorn worker) sees three wrong passwords for ada
    env = {**os.environ, "DEBUG": "true", "CACHE_URL": redis_cache, "DJANGO_SETTINGS_MODULE": "fleet.settings"}
    script = ("import django; django.setup()\n"
              "from fleet.accounts import throttle\n"
              f"[throttle.record_failure('ada', '{ATTACKER}') for _ in range(3)]\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    attacker = Client()
    _login(attacker, "ada", "nope", ATTACKER)
    _login(attacker, "ada", "nope", ATTACKER)
    # 3 + 2 = the limit: this process refuses the sixth attempt, right password or not
    assert b"Too many failed attempts" in _login(attacker, "ada", ADA_PASSWORD, ATTACKER).content
    assert not _logged_in(attacker)


@pytest.mark.services
def test_two_cache_clients_share_the_counts(settings, redis_cache):
    from django.core.cache.backends.redis import RedisCache

    settings.LOGIN_FAILURE_LIMIT = 3
    worker_a = RedisCache(redis_cache, {})
    worker_b = RedisCache(redis_cache, {})
    key = throttle._pair_key("ada", ATTACKER)
    for worker in (worker_a, worker_b, worker_a):
        if not worker.add(key, 1, 60):
            worker.incr(key)
    assert worker_b.get(key) == 3
    assert throttle.is_locked("ada", ATTACKER)


# The system check ------------------------------------------------------------------------------

@pytest.mark.parametrize("backend,debug,warned", [
    ("django.core.cache.backends.locmem.LocMemCache", False, True),
    ("django.core.cache.backends.dummy.DummyCache", False, True),
    ("django.core.cache.backends.locmem.LocMemCache", True, False),
    ("django.core.cache.backends.redis.RedisCache", False, False),
])
def test_the_check_warns_about_a_per_process_cache_outside_debug(settings, backend, debug, warned):
    settings.DEBUG = debug
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "redis://127.0.0.1:6379/4"}}
    messages = checks.check_shared_cache()
    assert [m.id for m in messages] == (["fleet.W001"] if warned else [])
