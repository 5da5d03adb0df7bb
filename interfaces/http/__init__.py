"""The Falcon ASGI API."""
