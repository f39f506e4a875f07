from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.utils.decorators import method_decorator

from fleet.accounts.forms import ThrottledLoginForm


@method_decorator(login_not_required, name="dispatch")
class LoginView(auth_views.LoginView):
    template_name = "fleet/login.html"
    form_class = ThrottledLoginForm
    redirect_authenticated_user = True


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "fleet/password_change.html"
    success_url = "/password/done/"


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "fleet/password_change_done.html"
