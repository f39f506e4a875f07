"""The EV callback address SolaX POSTs to: public (the secret in the path is the credential)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from fleet import callbacks
from fleet.views.base import HtmxHttpRequest


@csrf_exempt
@login_not_required
@require_http_methods(["GET", "POST"])
def solax_callback(request: HtmxHttpRequest, secret: str) -> HttpResponse:
    # GET is refused here rather than by @require_POST, whose 405 log line would carry the path, and
    # the path carries the secret (a browser that follows the URL is the likely stray visitor).
    if request.method != "POST":
        refused = HttpResponseNotAllowed(["POST"])
        refused._has_been_logged = True  # type: ignore[attr-defined]
        return refused
    # Django reads at most DATA_UPLOAD_MAX_MEMORY_SIZE; the service refuses anything larger than ours.
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.CALLBACK_MAX_BYTES:
        receipt = callbacks.refuse_oversized(length)
    else:
        receipt = callbacks.receive(secret, request.body)
    response = JsonResponse({"ok": receipt.status == 200, "detail": receipt.reason}, status=receipt.status)
    # fleet.callbacks logged the refusal without the secret; django.request would log the path with it
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response
