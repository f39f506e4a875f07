"""What an error report (the DEBUG 500 page, a mailed report) may show.

Django's SafeExceptionReporterFilter hides settings and request.META entries whose names look like
API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE. Our credentials also live in URLs: CELERY_BROKER_URL,
DATABASE_URL and CACHE_URL (in the environment, which the development server copies into
request.META) and CACHES' LOCATION. :class:`CredentialsFilter` hides those names too, masks the
password of any other ``scheme://user:password@host`` value, and hides POST fields named like a
credential (the token, a password) and variables marked with ``@sensitive_variables`` even under DEBUG,
where Django's filter lets them through.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest
from django.utils.regex_helper import _lazy_re_compile
from django.views.debug import SafeExceptionReporterFilter

from fleet.log_filters import mask


class CredentialsFilter(SafeExceptionReporterFilter):
    hidden_settings = _lazy_re_compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DSN|BROKER|LOCATION|CREDENTIAL", flags=re.I)

    def is_active(self, request: HttpRequest | None) -> bool:
        """Filter under DEBUG too: the DEBUG page is shown to whoever triggers the error."""
        return True

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str) and "://" in cleansed:
            cleansed = mask(cleansed)
        return cleansed

    def get_post_parameters(self, request: HttpRequest | None) -> Any:
        parameters = super().get_post_parameters(request)
        if request is None:
            return parameters
        hidden = [key for key in parameters if self.hidden_settings.search(key)]
        if hidden:
            parameters = parameters.copy()
            for key in hidden:
                parameters[key] = self.cleansed_substitute
        return parameters
