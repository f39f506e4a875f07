"""Admins manage the organization's API keys: create (the key shown this once), list, revoke."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from fleet.accounts import api_keys, audit, once
from fleet.accounts.access import get_for_org, require_admin
from fleet.accounts.forms import ApiKeyForm
from fleet.models import ApiKey, Organization
from fleet.views.base import HtmxHttpRequest

KEYS_SHOWN = 100
PURPOSE = "api-key-create"
SHOWN_ONCE = ("one key was created, and its secret was shown to that first submit only. If you did not copy it, "
              "revoke it and create another.")


def _context(request: HtmxHttpRequest, organization: Organization, form: ApiKeyForm) -> dict[str, object]:
    keys = ApiKey.objects.filter(organization=organization).select_related("created_by", "revoked_by")
    return {"form": form, "keys": keys[:KEYS_SHOWN], "key_count": keys.count(),
            "once_key": once.issue(request, PURPOSE)}


@require_http_methods(["GET", "POST"])
def api_key_list(request: HtmxHttpRequest) -> HttpResponse:
    """GET lists the keys; POST creates one and shows it, this once (only its SHA-256 is kept)."""
    organization = require_admin(request).organization
    form = ApiKeyForm(request.POST or None, organization=organization)
    if request.method == "GET":
        return render(request, "fleet/api_keys.html", _context(request, organization, form))
    fingerprint = once.posted_fingerprint(request)
    if (earlier := once.already_done(request, PURPOSE, fingerprint)) is not None:
        return once.replay(request, earlier, SHOWN_ONCE)
    if not form.is_valid():
        return render(request, "fleet/api_keys.html", _context(request, organization, form), status=400)
    try:
        with once.claim(request, PURPOSE, fingerprint) as claimed:
            key, plaintext = api_keys.create(organization, form.cleaned_data["name"], form.cleaned_data["scope"],
                                             user=request.user)
            audit.record(request, "api_key.create", key,
                         changes={"name": [None, key.name], "scope": [None, key.scope]})
            claimed.done(reverse("fleet-api-keys"))
    except once.AlreadyDone as done:
        return once.replay(request, done, SHOWN_ONCE)
    except api_keys.KeyNameTaken:
        form.add_error("name", "An active key with this name exists already.")
        return render(request, "fleet/api_keys.html", _context(request, organization, form), status=400)
    except once.Refused as refused:
        form.add_error(None, refused.message)
        return render(request, "fleet/api_keys.html", _context(request, organization, form), status=400)
    context = _context(request, organization, ApiKeyForm(organization=organization))
    context.update(new_key=key, plaintext=plaintext)
    response = render(request, "fleet/api_keys.html", context, status=201)
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
def api_key_revoke(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_admin(request)
    key = get_for_org(ApiKey.objects.all(), request, code=code)
    if api_keys.revoke(key, user=request.user):
        audit.record(request, "api_key.revoke", key, changes={"revoked": [False, True]})
        messages.success(request, f"API key “{key.name}” revoked: requests with it are refused from now on.")
    else:
        messages.error(request, f"API key “{key.name}” was revoked already.")
    return redirect("fleet-api-keys")
