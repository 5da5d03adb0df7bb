"""The API's own description, served unauthenticated: ``/openapi.json``, ``/asyncapi.json``,
the interactive reference at ``/docs`` and the event catalogue at ``/docs/events``.

Swagger UI's files come from the ``swagger-ui-bundle-v2`` package and are served from here,
so the reference works offline and behind a firewall: the page names no other host."""

from __future__ import annotations

import html
import json
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import falcon
import falcon.asgi
import orjson
import swagger_ui_bundle

from interfaces.event_catalogue import EventType, catalogue
from interfaces.http.asyncapi import asyncapi_document
from interfaces.http.openapi import openapi_document

ASSETS_PREFIX = "/docs/assets/"

# name → media type: only these files are served, whatever the path asks for.
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Agentry API reference</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<style>body { margin: 0 } .agentry-nav { font: 14px sans-serif; padding: 8px 20px; background: #1b1b1b }
.agentry-nav a { color: #fff; margin-right: 16px }</style>
</head>
<body>
<nav class="agentry-nav"><a href="/docs">HTTP API</a><a href="/docs/events">Event catalogue</a>
<a href="/openapi.json">openapi.json</a><a href="/asyncapi.json">asyncapi.json</a></nav>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
</script>
</body>
</html>
"""


def _send(resp: falcon.asgi.Response, data: bytes, media_type: str, cache_seconds: int = 0) -> None:
    resp.status = 200
    resp.content_type = media_type
    resp.data = data
    if cache_seconds:
        resp.set_header("Cache-Control", f"public, max-age={cache_seconds}")


@lru_cache(maxsize=1)
def _openapi_bytes() -> bytes:
    return orjson.dumps(openapi_document())


@lru_cache(maxsize=1)
def _asyncapi_bytes() -> bytes:
    return orjson.dumps(asyncapi_document())


@cache
def _asset(name: str) -> bytes:
    return (Path(str(swagger_ui_bundle.swagger_ui_path)) / name).read_bytes()


class OpenApiDocument:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        _send(resp, _openapi_bytes(), falcon.MEDIA_JSON)


class AsyncApiDocument:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        _send(resp, _asyncapi_bytes(), falcon.MEDIA_JSON)


class ApiReference:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        _send(resp, SWAGGER_PAGE.encode(), "text/html; charset=utf-8")


class DocsAsset:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise falcon.HTTPNotFound(description=f"no documentation asset {name[:64]!r}")
        _send(resp, _asset(name), media_type, cache_seconds=86400)


class EventCatalogue:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        _send(resp, _events_page().encode(), "text/html; charset=utf-8")


def _field_type(schema: dict[str, Any]) -> str:
    if "const" in schema:
        return json.dumps(schema["const"])
    if schema.get("properties", {}).get("_type_", {}).get("const") == "datetime_iso":
        return "timestamp"
    if "anyOf" in schema:
        return " | ".join(_field_type(branch) for branch in schema["anyOf"])
    return str(schema.get("type", "any"))


def _event_section(event: EventType) -> str:
    rows = "".join(
        f"<tr><td><code>{html.escape(name)}</code></td><td>{html.escape(_field_type(field))}</td></tr>"
        for name, field in event.schema["properties"].items()
    )
    schema = html.escape(json.dumps(event.schema, indent=2))
    return (
        f'<section id="{html.escape(event.name)}"><h3><code>{html.escape(event.name)}</code> '
        f"<small>schema v{event.version}</small></h3>"
        f"<p>{html.escape(event.description)} — stored as <code>{html.escape(event.topic)}</code></p>"
        f"<table><tr><th>field</th><th>type</th></tr>{rows}</table>"
        f"<details><summary>JSON Schema</summary><pre>{schema}</pre></details></section>"
    )


@lru_cache(maxsize=1)
def _events_page() -> str:
    events = catalogue()
    groups: dict[str, list[EventType]] = {}
    for event in events:
        groups.setdefault(event.kafka_topic or "never published (API keys)", []).append(event)
    body = []
    for topic, members in groups.items():
        body.append(f"<h2>{html.escape(topic)}</h2>")
        body.extend(_event_section(event) for event in members)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Agentry event catalogue</title>
<style>body {{ font: 15px/1.5 sans-serif; max-width: 960px; margin: 0 auto; padding: 0 20px }}
table {{ border-collapse: collapse }} td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: left }}
pre {{ background: #f6f6f6; padding: 8px; overflow: auto }}</style></head>
<body><p><a href="/docs">HTTP API</a> · <a href="/asyncapi.json">asyncapi.json</a></p>
<h1>Event catalogue</h1>
<p>Every event Agentry stores. The relay publishes each to the topic shown (key: the aggregate's
stream id; headers <code>event_type</code>, <code>event_id</code>, <code>tenant</code>, <code>seq</code>, and
<code>state_omitted: too_large</code> when the body comes without its <code>state</code>). The body
is <code>{{event_id, event_type, event_topic, aggregate_id, aggregate_version, notification_id,
tenant, seq, state}}</code>; <code>state</code> is the stored state below. API-key events are
never published. Session events of the public log also reach SSE clients of
<code>/v1/sessions/{{id}}/events/stream</code> as <code>event: type</code>, <code>id: seq</code>,
<code>data: the session event JSON</code>.</p>
<p>A schema version above 1 appears in the state as <code>class_version</code>; older stored
versions are upcast when loaded.</p>
{''.join(body)}
</body></html>
"""


def add_routes(app: falcon.asgi.App) -> None:
    app.add_route("/openapi.json", OpenApiDocument())
    app.add_route("/asyncapi.json", AsyncApiDocument())
    app.add_route("/docs", ApiReference())
    app.add_route("/docs/events", EventCatalogue())
    app.add_route("/docs/assets/{name}", DocsAsset())
