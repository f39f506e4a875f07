from __future__ import annotations

from django.contrib import admin

from fleet.models import Membership, Organization, SolaxAccount


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "created"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(SolaxAccount)
class SolaxAccountAdmin(admin.ModelAdmin):
    # The token is never shown: only its masked last four digits.
    list_display = ["name", "organization", "masked_token", "calls_per_minute", "calls_per_day", "paused_until"]
    list_filter = ["organization"]
    search_fields = ["name"]
    readonly_fields = ["masked_token", "code", "paused_until", "pause_reason"]
    exclude = ["token_ciphertext", "token_last4", "callback_secret"]
