"""The REST API under /api/v1/ (django-ninja): key-authenticated, over the same services as the pages."""
