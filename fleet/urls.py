from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from fleet.views import auth, bindings, budget, chargers, dashboard, groups, health, inverters, org

urlpatterns = [
    path("", dashboard.dashboard, name="fleet-dashboard"),
    path("login/", auth.LoginView.as_view(), name="fleet-login"),
    path("logout/", auth_views.LogoutView.as_view(), name="fleet-logout"),
    path("password/", auth.PasswordChangeView.as_view(), name="fleet-password-change"),
    path("password/done/", auth.PasswordChangeDoneView.as_view(), name="fleet-password-change-done"),
    path("healthz", health.healthz, name="fleet-healthz"),
    path("organization/switch/", dashboard.switch_organization, name="fleet-switch-organization"),
    path("budget/", budget.budget, name="fleet-budget"),
    path("settings/", org.settings_page, name="fleet-settings"),
    path("settings/accounts/new/", org.account_add, name="fleet-account-add"),
    path("settings/accounts/<uuid:code>/", org.account_edit, name="fleet-account-edit"),
    path("settings/members/add/", org.member_add, name="fleet-member-add"),
    path("settings/members/<uuid:code>/role/", org.member_role, name="fleet-member-role"),
    path("settings/members/<uuid:code>/remove/", org.member_remove, name="fleet-member-remove"),
    # The mirror (issue 5)
    path("groups/", groups.groups, name="fleet-groups"),
    path("groups/new/", groups.group_add, name="fleet-group-add"),
    path("groups/delete/", groups.groups_delete, name="fleet-groups-delete"),
    path("groups/search/", groups.group_cloud_search, name="fleet-groups-cloud-search"),
    path("groups/export.csv", groups.groups_export, name="fleet-groups-export"),
    path("groups/<uuid:code>/", inverters.group_detail, name="fleet-group"),
    path("groups/<uuid:code>/rename/", groups.group_rename, name="fleet-group-rename"),
    path("groups/<uuid:code>/delete/", groups.group_delete, name="fleet-group-delete"),
    path("groups/<uuid:code>/members/add/", inverters.member_add, name="fleet-group-member-add"),
    path("groups/<uuid:code>/members/remove/", inverters.members_remove, name="fleet-group-members-remove"),
    path("groups/<uuid:code>/members/search/", inverters.member_cloud_search,
         name="fleet-group-members-cloud-search"),
    path("groups/<uuid:code>/members.csv", inverters.members_export, name="fleet-group-members-export"),
    path("members/<uuid:code>/replace/", inverters.member_replace, name="fleet-group-member-replace"),
    path("members/<uuid:code>/remove/", inverters.member_remove, name="fleet-group-member-remove"),
    path("cloud-search/<uuid:code>/", groups.cloud_result, name="fleet-cloud-result"),
    path("sync/", groups.sync_start, name="fleet-sync-start"),
    path("sync/<uuid:code>/", groups.sync_run, name="fleet-sync-run"),
    path("inverters/", inverters.inverters, name="fleet-inverters"),
    path("chargers/", chargers.chargers, name="fleet-chargers"),
    path("chargers/<uuid:code>/", chargers.charger_detail, name="fleet-charger"),
    path("chargers/<uuid:code>/refresh/", chargers.charger_refresh, name="fleet-charger-refresh"),
    path("chargers/<uuid:code>/remove/", chargers.charger_remove, name="fleet-charger-remove"),
    path("binding/", bindings.binding, name="fleet-binding"),
    path("admin/", admin.site.urls),
]
