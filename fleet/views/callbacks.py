"""The EV callback address SolaX POSTs to: public (the secret in the path is the credential)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from fleet import callbacks
from fleet.views.base import HtmxHttpRequest


@csrf_exempt
@login_not_required
@require_POST
def solax_callback(request: HtmxHttpRequest, secret: str) -> JsonResponse:
    # Django reads at most DATA_UPLOAD_MAX_MEMORY_SIZE; the service refuses anything larger than ours.
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.CALLBACK_MAX_BYTES:
        receipt = callbacks.refuse_oversized(length)
    else:
        receipt = callbacks.receive(secret, request.body)
    return JsonResponse({"ok": receipt.status == 200, "detail": receipt.reason}, status=receipt.status)
