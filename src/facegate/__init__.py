"""facegate: a self-hosted face recognition service speaking the Trueface (Chui) v1 REST API."""

__version__ = "0.1.0"
