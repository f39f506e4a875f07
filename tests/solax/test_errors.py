"""The error tree: which failure becomes which error, whether it may have reached the cloud, and that
the token never shows in a message, repr, body, URL or traceback."""

from __future__ import annotations

import socket
import traceback
from collections.abc import Iterator

import pytest
import requests
import responses
from urllib3.exceptions import (
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from solax.client import DEFAULT_VPP_BASE_URL, SolaxClient
from solax.errors import (
    ApiError,
    AuthError,
    ControlValidationError,
    HTTPStatusError,
    InvalidTokenError,
    NotSentError,
    RateLimitedError,
    RequestValidationError,
    ResponseParseError,
    SolaxError,
    SolaxTimeout,
    TransportError,
    bound_text,
    error_for_vendor_failure,
    redact_secrets,
)

TOKEN = "20201109092101234567890"
URL = DEFAULT_VPP_BASE_URL + "/vppgroup/add"
LEAKY_URL = f"/proxy/vppgroup/add?tokenId={TOKEN}&name=x"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def assert_no_token(error: BaseException) -> None:
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    texts += [str(getattr(error, name, "")) for name in ("message", "body", "url")]
    assert all(TOKEN not in text for text in texts), texts
    assert error.__cause__ is None and error.__context__ is None  # nothing token-bearing chained


def fail_with(rsps: responses.RequestsMock, **answer: object) -> SolaxError:
    rsps.add("POST", URL, **answer)  # type: ignore[arg-type]
    with SolaxClient(TOKEN) as client, pytest.raises(SolaxError) as info:
        client.group_add("x")
    assert_no_token(info.value)
    assert info.value.endpoint == "group_add"
    return info.value


# requests' own exceptions, built the way requests/urllib3 build them (their messages carry the URL).
TRANSPORT_CASES = [
    (
        "refused",
        requests.exceptions.ConnectionError(
            MaxRetryError(None, LEAKY_URL, NewConnectionError(None, "Failed to establish a new connection: refused"))  # type: ignore[arg-type]
        ),
        NotSentError,
    ),
    (
        "dns",
        requests.exceptions.ConnectionError(
            MaxRetryError(
                None,  # type: ignore[arg-type]
                LEAKY_URL,
                NameResolutionError("www.solaxcloud.com", None, socket.gaierror(-2, "Name or service not known")),  # type: ignore[arg-type]
            )
        ),
        NotSentError,
    ),
    ("connect timeout", requests.exceptions.ConnectTimeout(f"timed out {LEAKY_URL}"), NotSentError),
    ("invalid url", requests.exceptions.InvalidURL(f"bad {LEAKY_URL}"), NotSentError),
    ("read timeout", requests.exceptions.ReadTimeout(f"read timed out {LEAKY_URL}"), SolaxTimeout),
    (
        "timeout while reading the body",
        requests.exceptions.ConnectionError(ReadTimeoutError(None, LEAKY_URL, "Read timed out.")),  # type: ignore[arg-type]
        SolaxTimeout,
    ),
    (
        "reset",
        requests.exceptions.ConnectionError(
            ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
        ),
        TransportError,
    ),
    ("chunked", requests.exceptions.ChunkedEncodingError("IncompleteRead"), TransportError),
    ("ssl", requests.exceptions.SSLError(f"EOF {LEAKY_URL}"), TransportError),
    ("other", requests.exceptions.ConnectionError(f"odd {LEAKY_URL}"), TransportError),
    ("not even a requests error", ValueError(f"weird {LEAKY_URL}"), TransportError),
]


@pytest.mark.parametrize(
    ("exc", "expected"), [case[1:] for case in TRANSPORT_CASES], ids=[case[0] for case in TRANSPORT_CASES]
)
def test_transport_failures(rsps: responses.RequestsMock, exc: Exception, expected: type[SolaxError]) -> None:
    error = fail_with(rsps, body=exc)
    assert type(error) is expected
    assert error.may_have_reached_cloud is (expected is not NotSentError)
    assert error.status is None


def test_a_503_page_is_an_http_status_error(rsps: responses.RequestsMock) -> None:
    html = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
    error = fail_with(rsps, body=html, status=503, content_type="text/html")
    assert type(error) is HTTPStatusError and error.status == 503 and error.body == html
    assert error.may_have_reached_cloud is True


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 502])
def test_every_non_2xx_is_an_http_status_error_even_with_a_json_body(rsps: responses.RequestsMock, status: int) -> None:
    error = fail_with(rsps, body='{"success":true,"result":1}', status=status)
    assert type(error) is HTTPStatusError and error.status == status and error.may_have_reached_cloud


@pytest.mark.parametrize(
    "body", ["<html><body>Maintenance</body></html>", '{"success":true,"result":', "", '{"result":1}']
)
def test_a_200_that_is_not_an_envelope_is_a_parse_error(rsps: responses.RequestsMock, body: str) -> None:
    error = fail_with(rsps, body=body, status=200)
    assert type(error) is ResponseParseError and error.status == 200 and error.body == body
    assert error.may_have_reached_cloud is True


VENDOR_CASES = [
    ('{"success":false,"exception":"Request calls within the current minute > threshold","code":3}', RateLimitedError),
    (
        '{"success":false,"exception":"Request calls within the current minute > threshold","code":104}',
        RateLimitedError,
    ),
    ('{"success":false,"exception":"token invalid!","code":103}', AuthError),
    ('{"success":false,"exception":"Interface Unauthorized","code":1001}', AuthError),
    ('{"success":false,"exception":"no auth!","code":1003}', AuthError),
    ('{"success":false,"exception":null,"result":"token invalid!"}', AuthError),
    ('{"success":false,"exception":"The group does not exist","result":null,"code":2}', ApiError),
    ('{"isSuccess":false,"exception":"device offline"}', ApiError),
    ('{"success":"false","exception":null,"result":null}', ApiError),
]


@pytest.mark.parametrize(("body", "expected"), VENDOR_CASES)
def test_vendor_refusals(rsps: responses.RequestsMock, body: str, expected: type[SolaxError]) -> None:
    error = fail_with(rsps, body=body)
    assert type(error) is expected and error.status == 200 and error.body == body
    assert error.may_have_reached_cloud is False


def test_minute_limits_wait_a_minute(rsps: responses.RequestsMock) -> None:
    error = fail_with(
        rsps, body='{"success":false,"exception":"Request calls within the current minute > threshold","code":104}'
    )
    assert isinstance(error, RateLimitedError)
    assert (error.lockout, error.retry_after, error.code) == (False, 60, "104")
    assert error.message == "Request calls within the current minute > threshold"


def test_several_violations_lock_out_for_an_hour(rsps: responses.RequestsMock) -> None:
    text = "There have been several violations in a row, and the system will prohibit calls within the next hour"
    error = fail_with(rsps, body=f'{{"success":false,"exception":"{text}","code":1}}')
    assert isinstance(error, RateLimitedError)
    assert (error.lockout, error.retry_after, error.code) == (True, 3600, "1")
    assert "lockout=True" in repr(error) and "retry_after=3600" in repr(error)


def test_a_vendor_message_echoing_the_token_is_masked(rsps: responses.RequestsMock) -> None:
    error = fail_with(rsps, body=f'{{"success":false,"exception":"token invalid! {TOKEN}","code":103}}')
    assert isinstance(error, AuthError) and error.message == "token invalid! ***"


def test_the_message_of_a_plain_api_error_is_the_vendors_text(rsps: responses.RequestsMock) -> None:
    error = fail_with(rsps, body='{"success":false,"exception":"The group does not exist","code":2}')
    assert error.message == "The group does not exist"
    assert str(error) == "group_add: The group does not exist (status=200, code=2)"


# -- the module itself ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reached"),
    [
        (SolaxError("x"), True),
        (NotSentError("x"), False),
        (SolaxTimeout("x"), True),
        (TransportError("x"), True),
        (HTTPStatusError("x", status=503), True),
        (HTTPStatusError("x", status=404), True),
        (ResponseParseError("x"), True),
        (AuthError("x"), False),
        (InvalidTokenError("x"), False),
        (RateLimitedError("x", lockout=False, retry_after=60), False),
        (ApiError("x"), False),
        (RequestValidationError({"a": "b"}), False),
        (ControlValidationError({"a": "b"}), False),
    ],
)
def test_may_have_reached_cloud(error: SolaxError, reached: bool) -> None:
    assert error.may_have_reached_cloud is reached


def test_errors_strip_tokens_from_urls_messages_and_bodies() -> None:
    error = SolaxError(
        f"failed {LEAKY_URL}",
        status=500,
        code=7,
        body=f'{{"tokenId": "{TOKEN}", "token":"{TOKEN}"}}',
    )
    assert error.code == "7"
    assert error.body == '{"tokenId": "***", "token":"***"}'
    assert_no_token(error)


def test_redact_secrets() -> None:
    assert redact_secrets(f"a?token={TOKEN}&b=1") == "a?token=***&b=1"
    assert redact_secrets(f"'tokenId': '{TOKEN}'") == "'tokenId': '***'"
    assert redact_secrets("nothing here") == "nothing here"


def test_bodies_are_bounded() -> None:
    error = SolaxError("x", body="y" * 100_000)
    assert error.body is not None and len(error.body) < 5000 and error.body.endswith("more characters]")
    assert bound_text("short", 10) == "short"


def test_validation_errors_list_every_field() -> None:
    error = ControlValidationError({"timeout": "required", "minSoc": "must be between 0 and 100 %"})
    assert error.errors == {"timeout": "required", "minSoc": "must be between 0 and 100 %"}
    assert "timeout: required" in str(error) and "minSoc" in str(error)
    assert isinstance(error, RequestValidationError)


@pytest.mark.parametrize(
    ("message", "code", "expected", "lockout"),
    [
        ("Request calls within the current minute > threshold", 3, RateLimitedError, False),
        ("anything", "104", RateLimitedError, False),
        ("There have been several violations in a row", 1, RateLimitedError, True),
        ("other trouble", 1, ApiError, None),
        ("token invalid!", None, AuthError, None),
        ("", 1001, AuthError, None),
        (None, 1003, AuthError, None),
        (None, None, ApiError, None),
    ],
)
def test_error_for_vendor_failure(
    message: str | None, code: object, expected: type[SolaxError], lockout: bool | None
) -> None:
    error = error_for_vendor_failure(message, code, status=200)  # type: ignore[arg-type]
    assert type(error) is expected and error.message
    if lockout is not None:
        assert isinstance(error, RateLimitedError) and error.lockout is lockout
