"""Event-state JSON that client data cannot forge.

``eventsourcing``'s JSON transcoder writes its custom types (datetimes, UUIDs, decimals) as
``{"_type_": name, "_data_": value}`` and, reading back, takes *every* two-key object of
that shape for one. Agents, sessions and session events carry client JSON verbatim, so a
client could store an object that decodes as a Decimal, as a malformed UUID, or not at all;
the last one halts every projection and keeps the server from starting. Before encoding, any
such object in the data is therefore rewritten as an ``agentry_dict`` of key/value pairs, a
form the decoder turns back into the very same dict."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

_TAG_KEYS = frozenset({"_type_", "_data_"})


class _TagShapedDict:
    """A client dict that looks like a transcoder tag; written as pairs, never as itself."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[list[Any]]) -> None:
        self.pairs = pairs


class TagShapedDictAsPairs(Transcoding):
    type = _TagShapedDict
    name = "agentry_dict"

    def encode(self, obj: _TagShapedDict) -> list[list[Any]]:
        return obj.pairs

    def decode(self, data: list[list[Any]]) -> dict[str, Any]:
        return {key: value for key, value in data}


def escape_tag_shaped(value: Any) -> Any:
    """``value`` itself when nothing in it looks like a tag (the usual case, no copy), else a
    copy with every tag-shaped dict replaced."""
    if isinstance(value, dict):
        escaped = {key: escape_tag_shaped(item) for key, item in value.items()}
        if value.keys() == _TAG_KEYS:
            return _TagShapedDict([[key, item] for key, item in escaped.items()])
        if any(escaped[key] is not item for key, item in value.items()):
            return escaped
        return value
    if isinstance(value, (list, tuple)):
        escaped_items = [escape_tag_shaped(item) for item in value]
        if any(new is not old for new, old in zip(escaped_items, value, strict=True)):
            return escaped_items
        return value
    return value


class SafeJSONTranscoder(JSONTranscoder):
    def __init__(self) -> None:
        super().__init__()
        self.register(TagShapedDictAsPairs())

    def encode(self, obj: Any) -> bytes:
        return super().encode(escape_tag_shaped(obj))
