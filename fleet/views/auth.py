from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.utils.decorators import method_decorator

from fleet.accounts import throttle
from fleet.accounts.forms import ThrottledLoginForm


@method_decorator(login_not_required, name="dispatch")
class LoginView(auth_views.LoginView):
    template_name = "fleet/login.html"
    form_class = ThrottledLoginForm
    redirect_authenticated_user = True

    def form_valid(self, form: ThrottledLoginForm) -> HttpResponse:  # type: ignore[override]
        response = super().form_valid(form)
        # This browser may log in as this user even while the username is under a distributed attack.
        throttle.set_device_cookie(response, form.get_user().get_username())
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "fleet/password_change.html"
    success_url = "/password/done/"


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "fleet/password_change_done.html"
