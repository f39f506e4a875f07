"""The resources as both the API and the webhooks show them (schemas and serializers)."""
