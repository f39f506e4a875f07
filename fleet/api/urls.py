"""The API's routes, mounted under /api/v1/ by fleet.urls."""

from __future__ import annotations

from fleet.api import commands, resources
from fleet.api.core import api, urls

api.add_router("", resources.router)
api.add_router("", commands.router)

urlpatterns, app_name, namespace = urls()
