"""The file endpoints in the API description (``api_description.OPERATIONS`` takes them in one
line). The upload is ``multipart/form-data`` and the download raw bytes, which the operations
say through ``request_content`` and ``content``."""

from __future__ import annotations

from interfaces.http import files_schemas as files
from interfaces.http.api_description import LIMIT, PAGE, Operation, Param, path_id
from interfaces.http.limits import MAX_FILE_BYTES, describe

FILE = path_id("file_id", "file")
UPLOAD_BODY = {
    "type": "object",
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "the bytes; the part's filename names the file"},
        "expires_in_seconds": {
            "type": "integer",
            "minimum": 3600,
            "maximum": 7_776_000,
            "description": "seconds until the file expires and its bytes become unavailable",
        },
    },
    "required": ["file"],
}
BYTES = {"type": "string", "format": "binary"}
# Agentry's own workers mount a session's files with its work item's token.
WORKER_READ = "Also takes the `sessions_token` of a work item whose session has the file attached (another file: 404)."

FILE_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post", "/v1/files", "uploadFile", "Upload a file", "files", files.FileMetadata,
        request_content={"multipart/form-data": {"schema": UPLOAD_BODY}}, errors=(400, 413, 415),
        description=(
            f"One part `file` of at most {describe(MAX_FILE_BYTES)} by default (`AGENTRY_FILE_MAX_BYTES`; over it: 413), "
            "and optionally `expires_in_seconds` (3600–7776000). No beta header is needed."
        ),
    ),
    Operation(
        "get", "/v1/files", "listFiles", "List files, newest first", "files", files.FilePage,
        params=(
            LIMIT,
            PAGE,
            Param("scope_id", "query", {"type": "string"}, "only files of this scope (a session id)"),
            Param(
                "ids[]", "query", {"type": "array", "items": {"type": "string"}, "maxItems": 100},
                "only these files, as one page (unknown ids are left out); excludes `page` and `limit`",
            ),
        ),
        errors=(400,),
    ),
    Operation("get", "/v1/files/{file_id}", "getFileMetadata", "Retrieve a file's metadata", "files", files.FileMetadata, params=(FILE,), errors=(403, 404), description=WORKER_READ),
    Operation(
        "get", "/v1/files/{file_id}/content", "downloadFile", "Download a file's bytes", "files", None,
        params=(FILE,), errors=(400, 403, 404), content={"*/*": BYTES},
        description=(
            "Raw bytes with the file's own `Content-Type`. Expired: 404 `file_expired`; not downloadable: 400 "
            "`file_not_downloadable`. " + WORKER_READ
        ),
    ),
    Operation("delete", "/v1/files/{file_id}", "deleteFile", "Delete a file", "files", files.FileDeleted, params=(FILE,), errors=(404,)),
)
