"""The web app on one DigitReader: the page, POST /api/read, and the camera's WebSocket."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from digitrec.annotate import draw_result
from digitrec.reader import DigitReader
from digitrec.sources import first_page_only, page_count
from digitrec.types import Frame, FrameResult
from digitrec.web.upload import (
    DEFAULT_LIMITS,
    FORM_FIELD,
    UploadError,
    UploadLimits,
    check_content_type,
    decode_image,
    image_from_multipart,
    too_large,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"
TOP_COUNT = 3
"""How many of each digit's most likely readings the web answers list."""

ANNOTATED_JPEG_QUALITY = 90
MAX_SOURCE_NAME = 200
"""Longest client-given name echoed back as the result's `source` (it is never used as a path)."""


class SerialReader:
    """One DigitReader shared by every request, reading one frame at a time.

    On a laptop CPU one read already uses the cores, so requests queue on a lock rather than each
    holding a reader of its own; so does decoding (`read_encoded`): an upload within the limits may
    still decode to 50 megapixels, and twenty decoded at once took the server past 5 GB.
    """

    def __init__(self, reader: DigitReader):
        self.reader = reader
        self.turn = threading.Lock()
        """Held by one request at a time, from decoding its image to its answer."""

    def read(self, image: np.ndarray, source: str, index: int = 0, still: bool = False) -> FrameResult:
        with self.turn:
            return self.read_in_turn(image, source, index, still)

    def read_in_turn(self, image: np.ndarray, source: str, index: int = 0, still: bool = False) -> FrameResult:
        """`read`, for a caller already holding `turn`."""
        return self.reader.read(Frame(index=index, image=image, source=source, time=time.monotonic(), still=still))


def result_json(result: FrameResult, top: int = TOP_COUNT) -> dict:
    """The design doc's JSON contract, plus each digit's `top` most likely readings (an extra key)."""
    record = result.to_json()
    for detection, entry in zip(result.detections, record["detections"]):
        if detection.probabilities is not None:
            best = np.argsort(detection.probabilities)[::-1][:top]
            entry["top"] = [
                {"digit": int(digit), "probability": round(float(detection.probabilities[digit]), 4)}
                for digit in best
            ]
    return record


def annotated_data_url(image: np.ndarray, result: FrameResult) -> str:
    """The image annotated by `draw_result`, as a JPEG data URL the page can show directly."""
    ok, encoded = cv2.imencode(".jpg", draw_result(image, result), [cv2.IMWRITE_JPEG_QUALITY, ANNOTATED_JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the annotated image as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


# ------------------------------------------------------------------ the documented response of POST /api/read


class TopReading(BaseModel):
    digit: int
    probability: float


class DetectionOut(BaseModel):
    box: list[int] = Field(description="[x, y, w, h] in pixels of the image, top-left origin, tight around the ink")
    digit: int
    confidence: float
    number: int = Field(description="index into `numbers`")
    top: list[TopReading] = Field(description=f"the {TOP_COUNT} most likely digits, most likely first (extra key)")


class NumberOut(BaseModel):
    text: str
    box: list[int]
    confidence: float


class ReadResult(BaseModel):
    """The JSON Lines contract of the design doc, for one image, with the web's extra keys."""

    source: str = Field(description="the `name` query parameter, the form's file name, or 'upload'")
    frame: int = Field(description="always 0 for an uploaded image")
    width: int
    height: int
    detections: list[DetectionOut]
    numbers: list[NumberOut] = Field(description="in reading order")
    annotated_image: str | None = Field(None, description="JPEG data URL of the annotated image, when annotate=true")
    server_ms: float = Field(description="time the server spent on this image (extra key)")
    warnings: list[str] = Field(description="what the reading left out, such as the later pages of a TIFF "
                                "(extra key; empty when nothing)")


class ErrorOut(BaseModel):
    detail: str


REQUEST_BODY = {
    "required": True,
    "description": "The image: its raw bytes with an image/* Content-Type (JPEG, PNG, BMP, TIFF or WebP), "
    f"or a multipart form with the file in the '{FORM_FIELD}' field.",
    "content": {
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {FORM_FIELD: {"type": "string", "format": "binary"}},
                "required": [FORM_FIELD],
            }
        },
    },
}


# ------------------------------------------------------------------ the app


async def _body_within(request: Request, limits: UploadLimits) -> bytes:
    """The request body, refused (413) as soon as it passes the cap rather than after reading it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise too_large(int(declared), limits)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_bytes:
            raise too_large(len(body), limits)
    return bytes(body)


def create_app(reader: DigitReader, limits: UploadLimits = DEFAULT_LIMITS) -> FastAPI:
    """The FastAPI app serving the page, its static files, POST /api/read and /ws/camera."""
    serial = SerialReader(reader)
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    app = FastAPI(
        title="digitrec",
        summary="Read handwritten digits and numbers in images.",
        description="The page at / reads photos, the browser's camera and a drawing pad; "
        "POST /api/read reads one image and answers the JSON contract of the design doc.",
    )
    app.state.limits = limits
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(UploadError)
    async def refuse_upload(_request: Request, error: UploadError) -> JSONResponse:
        return JSONResponse({"detail": error.message}, status_code=error.status)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/limits", summary="The upload limits", tags=["reading"])
    async def upload_limits() -> dict:
        return {"max_bytes": limits.max_bytes, "max_pixels": limits.max_pixels}

    @app.post(
        "/api/read",
        summary="Read the digits and numbers in one image",
        tags=["reading"],
        openapi_extra={"requestBody": REQUEST_BODY},
        responses={
            200: {"model": ReadResult, "description": "What was read (the design doc's JSON contract)"},
            400: {"model": ErrorOut, "description": "Empty, not an image, or over the pixel limit"},
            413: {"model": ErrorOut, "description": "Over the upload size limit"},
            415: {"model": ErrorOut, "description": "A Content-Type that cannot hold an image"},
        },
    )
    async def read_image(
        request: Request,
        annotate: bool = Query(False, description="also return the annotated image as a JPEG data URL"),
        name: str | None = Query(None, description="echoed as the result's `source`; never used as a path"),
    ) -> JSONResponse:
        media_type = check_content_type(request.headers.get("content-type"))
        body = await _body_within(request, limits)
        if not body:
            raise UploadError(400, "the request body is empty; send an image's bytes (or a form with its file)")
        file_name = None
        if media_type == "multipart/form-data":
            body, file_name = image_from_multipart(body, request.headers["content-type"], limits)
        source = (name or file_name or "upload")[:MAX_SOURCE_NAME]
        return JSONResponse(await run_in_threadpool(read_encoded, serial, body, limits, source, 0, annotate, still=True))

    @app.websocket("/ws/camera")
    async def camera(socket: WebSocket) -> None:
        """Each binary message is one JPEG frame; each answer is that frame's JSON, in order."""
        await socket.accept()
        index = 0
        try:
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                frame_bytes = message.get("bytes")
                if frame_bytes is None:
                    await socket.send_json({"error": "send each camera frame as one binary message (JPEG bytes)"})
                    continue
                try:
                    answer = await run_in_threadpool(read_encoded, serial, frame_bytes, limits, "camera", index)
                except UploadError as error:
                    answer = {"error": error.message}
                await socket.send_json(answer)
                index += 1
        except WebSocketDisconnect:
            pass

    return app


def read_encoded(
    serial: SerialReader, data: bytes, limits: UploadLimits, source: str, index: int = 0, annotate: bool = False,
    still: bool = False,
) -> dict:
    """Decode, read and answer one encoded image (an uploaded photo if `still`, else a camera frame):
    the JSON contract with the web's extra keys."""
    with serial.turn:  # the decoded image and its annotation, one request's at a time
        started = time.perf_counter()
        image = decode_image(data, limits)
        result = serial.read_in_turn(image, source, index, still)
        record = result_json(result)
        pages = page_count(np.frombuffer(data, np.uint8)) if still else 1
        record["warnings"] = [f"the image {first_page_only(pages)}"] if pages > 1 else []
        if annotate:
            record["annotated_image"] = annotated_data_url(image, result)
        record["server_ms"] = round((time.perf_counter() - started) * 1000.0, 1)
    return record
