"""The web page on the reader: photo upload, the browser's camera and a drawing pad, and POST /api/read."""

from __future__ import annotations

from digitrec.web.app import create_app, result_json
from digitrec.web.server import DEFAULT_HOST, DEFAULT_PORT, ServerError, WebServer, is_loopback
from digitrec.web.upload import DEFAULT_LIMITS, UploadError, UploadLimits

__all__ = [
    "DEFAULT_HOST", "DEFAULT_LIMITS", "DEFAULT_PORT", "ServerError", "UploadError", "UploadLimits", "WebServer",
    "create_app", "is_loopback", "result_json",
]  # fmt: skip
