"""The EV callback address SolaX POSTs to: public (the secret in the path is the credential)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.http.request import RawPostDataException
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables

from fleet.commands import callbacks
from fleet.views.base import HtmxHttpRequest


@csrf_exempt
@login_not_required
@sensitive_variables("secret")
def solax_callback(request: HtmxHttpRequest, secret: str) -> HttpResponse:
    # Every method but POST is refused here rather than by @require_POST / @require_http_methods,
    # whose 405 log line would carry the path, and the path carries the secret (a browser, a link
    # previewer's HEAD or a monitor's OPTIONS are the likely stray visitors).
    if request.method != "POST":
        refused = HttpResponseNotAllowed(["POST"])
        refused._has_been_logged = True  # type: ignore[attr-defined]
        return refused
    # Django reads at most DATA_UPLOAD_MAX_MEMORY_SIZE; the service refuses anything larger than ours.
    # A Content-Length that is not a number never gets here (fleet.middleware.RejectMalformedInput).
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.CALLBACK_MAX_BYTES:
        receipt = callbacks.refuse_oversized(length)
    else:
        try:
            body = request.body
        except RawPostDataException:  # a multipart form, already parsed (and refused if it held NUL)
            body = b""
        receipt = callbacks.receive(secret, body)
    response = JsonResponse({"ok": receipt.status == 200, "detail": receipt.reason}, status=receipt.status)
    # fleet.callbacks logged the refusal without the secret; django.request would log the path with it
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response
