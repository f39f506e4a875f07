from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from fleet.views import auth, budget, callbacks, commands, dashboard, health, org, schedules

urlpatterns = [
    path("", dashboard.dashboard, name="fleet-dashboard"),
    path("login/", auth.LoginView.as_view(), name="fleet-login"),
    path("logout/", auth_views.LogoutView.as_view(), name="fleet-logout"),
    path("password/", auth.PasswordChangeView.as_view(), name="fleet-password-change"),
    path("password/done/", auth.PasswordChangeDoneView.as_view(), name="fleet-password-change-done"),
    path("healthz", health.healthz, name="fleet-healthz"),
    path("organization/switch/", dashboard.switch_organization, name="fleet-switch-organization"),
    path("budget/", budget.budget, name="fleet-budget"),
    path("schedules/", schedules.schedule_list, name="fleet-schedules"),
    path("schedules/new/", schedules.schedule_create, name="fleet-schedule-create"),
    path("schedules/device-windows/", schedules.device_windows, name="fleet-device-windows"),
    path("schedules/<uuid:code>/", schedules.schedule_detail, name="fleet-schedule-detail"),
    path("schedules/<uuid:code>/edit/", schedules.schedule_edit, name="fleet-schedule-edit"),
    path("schedules/<uuid:code>/pause/", schedules.schedule_pause, name="fleet-schedule-pause"),
    path("schedules/<uuid:code>/delete/", schedules.schedule_delete, name="fleet-schedule-delete"),
    path("settings/", org.settings_page, name="fleet-settings"),
    path("settings/accounts/new/", org.account_add, name="fleet-account-add"),
    path("settings/accounts/<uuid:code>/", org.account_edit, name="fleet-account-edit"),
    path("settings/members/add/", org.member_add, name="fleet-member-add"),
    path("settings/members/<uuid:code>/role/", org.member_role, name="fleet-member-role"),
    path("settings/members/<uuid:code>/remove/", org.member_remove, name="fleet-member-remove"),
    path("commands/", commands.command_list, name="fleet-command-list"),
    path("commands/new/", commands.command_new, name="fleet-command-new"),
    path("commands/<uuid:code>/", commands.command_detail, name="fleet-command-detail"),
    path("commands/<uuid:code>/resolve/", commands.command_resolve, name="fleet-command-resolve"),
    path("solax/callback/<str:secret>/", callbacks.solax_callback, name="fleet-callback"),
    path("admin/", admin.site.urls),
]
