"""The HTTP layer: the Trueface v1 wire contract on FastAPI. Translation only, no business logic."""

from facegate.api.app import create_app

__all__ = ["create_app"]
