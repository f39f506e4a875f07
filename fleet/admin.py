from __future__ import annotations

from django.contrib import admin

from fleet.models import Charger, Group, Inverter, Membership, Organization, SolaxAccount


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
    exclude = ["token_ciphertext", "token_last4", "callback_secret_hash", "callback_secret_ciphertext"]


# The mirror: registered so the benchmark can compare our pages with the admin changelist.
@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "remote_id", "device_count", "remote_updated", "removed"]
    list_filter = ["removed"]
    search_fields = ["name"]
    readonly_fields = ["code"]


@admin.register(Inverter)
class InverterAdmin(admin.ModelAdmin):
    list_display = ["inverter_sn", "dongle_sn", "group", "account", "removed"]
    list_filter = ["removed"]
    search_fields = ["inverter_sn", "dongle_sn"]
    raw_id_fields = ["group"]
    list_select_related = ["group", "account"]


@admin.register(Charger)
class ChargerAdmin(admin.ModelAdmin):
    list_display = ["sn", "label", "account", "status", "mode", "read_at"]
    search_fields = ["sn", "label"]
