"""SolaX Cloud vendor client: the VPP control API and the EV charger API (no Django in here).

Start with :class:`SolaxClient`; control parameters come from :func:`build_control_params`; stored
answers are read with :mod:`solax.parsing`. See ``solax/README.md``.
"""

from __future__ import annotations

from solax.client import DEFAULT_EV_BASE_URL, DEFAULT_VPP_BASE_URL, SolaxClient, TokenAuth
from solax.control import FIELDS, MAX_SNS_PER_CALL, FieldSpec, PileMode, build_control_params, required_fields
from solax.endpoints import ENDPOINTS, RESULT_PARSERS, Endpoint
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
)
from solax.models import BindResult, Callback, Envelope, Group, Member, Page, PileInfo
from solax.parsing import parse_callback, parse_envelope

__all__ = [
    "DEFAULT_EV_BASE_URL",
    "DEFAULT_VPP_BASE_URL",
    "ENDPOINTS",
    "FIELDS",
    "MAX_SNS_PER_CALL",
    "RESULT_PARSERS",
    "ApiError",
    "AuthError",
    "BindResult",
    "Callback",
    "ControlValidationError",
    "Endpoint",
    "Envelope",
    "FieldSpec",
    "Group",
    "HTTPStatusError",
    "InvalidTokenError",
    "Member",
    "NotSentError",
    "Page",
    "PileInfo",
    "PileMode",
    "RateLimitedError",
    "RequestValidationError",
    "ResponseParseError",
    "SolaxClient",
    "SolaxError",
    "SolaxTimeout",
    "TokenAuth",
    "TransportError",
    "build_control_params",
    "parse_callback",
    "parse_envelope",
    "required_fields",
]
