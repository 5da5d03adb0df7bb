"""The web console at ``/console``: static files shipped as package data
(``interfaces/console_assets``), served unauthenticated. The page holds no data of its own;
every call it makes goes through the public API with the credential the person signs in with.

Only files found under the package directory at start-up are served (no path from the request
reaches the file system), each with its media type. ``screens.json`` lists the screen modules
found there, so a screen is added by dropping a file into ``screens/``."""

from __future__ import annotations

import json
from pathlib import Path

import falcon
import falcon.asgi

import interfaces.console_assets

PREFIX = "/console"
ASSETS_PREFIX = "/console/assets/"
SCREENS_INDEX = "screens.json"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}

# The page, the modules and the screen list are small and change with a release: revalidate
# rather than cache, so an upgrade is never half old, half new in a browser.
CACHE = "no-cache"

# The console runs only its own files: no inline script or style, no other origin, no framing
# (clickjacking), no <base> rewriting. Styles set from script through element.style (CSSOM) are
# not inline styles to CSP and stay allowed.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def assets_directory() -> Path:
    return Path(interfaces.console_assets.__file__).parent


class ConsoleFiles:
    """The files under the assets directory, read once (at start-up)."""

    def __init__(self, directory: Path) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        for found in sorted(directory.rglob("*")):
            media_type = MEDIA_TYPES.get(found.suffix)
            if media_type is None or not found.is_file():
                continue
            self.files[found.relative_to(directory).as_posix()] = (found.read_bytes(), media_type)
        screens = sorted(name.split("/", 1)[1] for name in self.files if name.startswith("screens/") and name.count("/") == 1)
        self.files[SCREENS_INDEX] = (json.dumps(screens).encode(), "application/json")


def _send(resp: falcon.asgi.Response, found: tuple[bytes, str]) -> None:
    resp.status = 200
    resp.data, resp.content_type = found
    resp.set_header("Cache-Control", CACHE)
    resp.set_headers(SECURITY_HEADERS)


class ConsolePage:
    def __init__(self, files: ConsoleFiles) -> None:
        self._files = files

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        _send(resp, self._files.files["index.html"])


class ConsoleAsset:
    def __init__(self, files: ConsoleFiles) -> None:
        self._files = files

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, path: str) -> None:
        found = self._files.files.get(path)
        if found is None or path == "index.html":
            raise falcon.HTTPNotFound(description=f"no console file {path[:64]!r}")
        _send(resp, found)


def is_public(path: str) -> bool:
    return path == PREFIX or path.startswith(ASSETS_PREFIX)


def add_routes(app: falcon.asgi.App) -> None:
    files = ConsoleFiles(assets_directory())
    app.add_route(PREFIX, ConsolePage(files))
    app.add_route(ASSETS_PREFIX + "{path:path}", ConsoleAsset(files))
