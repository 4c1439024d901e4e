"""The web server's API and limits, through FastAPI's TestClient: POST /api/read, the camera WebSocket, the page."""

from __future__ import annotations

import base64
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs fastapi (pip install -r requirements.txt)")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx (pip install -r requirements.txt)")

from fastapi.testclient import TestClient  # noqa: E402

import live_digits  # noqa: E402
from digitrec.reader import DigitReader  # noqa: E402
from digitrec.synth import StrokeGlyphs, make_page, make_touching_pair, make_video  # noqa: E402
from digitrec.types import Frame  # noqa: E402
from digitrec.web.app import STATIC_DIR, SerialReader, create_app  # noqa: E402
from digitrec.web.server import ServerError, WebServer, is_loopback  # noqa: E402
from digitrec.web.upload import UploadLimits  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "digits.keras"
PAGE_SEED = 2
"""A clean synthetic page whose ten numbers the shipped reader reads exactly."""

pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason=f"no trained model at {MODEL}: run train.py first")


@pytest.fixture(scope="module")
def reader() -> DigitReader:
    return DigitReader(MODEL)


@pytest.fixture(scope="module")
def client(reader) -> TestClient:
    return TestClient(create_app(reader))


@pytest.fixture(scope="module")
def page():
    return make_page(PAGE_SEED, StrokeGlyphs(), "clean", (1280, 720))


def encoded(image: np.ndarray, extension: str = ".png") -> bytes:
    ok, data = cv2.imencode(extension, image)
    assert ok
    return data.tobytes()


def test_a_photo_is_answered_with_the_json_contract_and_its_numbers(client, page):
    response = client.post("/api/read", content=encoded(page.image), headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    record = response.json()
    assert (record["source"], record["frame"], record["width"], record["height"]) == ("upload", 0, 1280, 720)
    assert [number["text"] for number in record["numbers"]] == [number.text for number in page.numbers]
    assert len(record["detections"]) == len(page.digits)
    for detection in record["detections"]:
        assert set(detection) >= {"box", "digit", "confidence", "number"}
        assert 0 <= detection["number"] < len(record["numbers"])
        top = detection["top"]
        assert len(top) == 3 and top[0]["digit"] == detection["digit"]
        assert top[0]["probability"] == pytest.approx(detection["confidence"], abs=1e-4)
        probabilities = [entry["probability"] for entry in top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert len({entry["digit"] for entry in top}) == 3
    assert "annotated_image" not in record
    assert record["warnings"] == []


def test_a_tiff_of_several_pages_is_read_from_its_first_with_a_warning(client, page):
    import io

    from PIL import Image

    first = Image.fromarray(cv2.cvtColor(page.image, cv2.COLOR_BGR2RGB))
    blank = Image.new("RGB", first.size, "white")
    tiff = io.BytesIO()
    first.save(tiff, format="TIFF", save_all=True, append_images=[blank, blank])
    response = client.post("/api/read", content=tiff.getvalue(), headers={"Content-Type": "image/tiff"})
    assert response.status_code == 200, response.text
    record = response.json()
    assert [number["text"] for number in record["numbers"]] == [number.text for number in page.numbers]
    assert len(record["warnings"]) == 1 and "3 pages" in record["warnings"][0]


def test_a_form_upload_can_ask_for_the_annotated_image(client, page):
    jpeg = encoded(page.image, ".jpg")
    response = client.post("/api/read", params={"annotate": "true"},
                           files={"image": ("sheet 1.jpg", jpeg, "image/jpeg")})
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["source"] == "sheet 1.jpg"
    prefix = "data:image/jpeg;base64,"
    assert record["annotated_image"].startswith(prefix)
    annotated = cv2.imdecode(np.frombuffer(base64.b64decode(record["annotated_image"][len(prefix):]), np.uint8),
                             cv2.IMREAD_COLOR)
    assert annotated.shape == page.image.shape
    # The green boxes of digitrec.annotate are drawn: many more strongly green pixels than in the photo.
    def green(image):
        b, g, r = (image[..., channel].astype(int) for channel in range(3))
        return int(((g > 150) & (g - r > 80) & (g - b > 80)).sum())
    assert green(annotated) > green(page.image) + 1000


def test_an_upload_is_read_as_a_photo_and_a_camera_frame_as_video(client, reader):
    # Touching digits as narrow as one wide digit are cut on photos only (digitrec.split).
    pairs = [make_touching_pair(seed, StrokeGlyphs()).page.image for seed in range(8)]

    def digits(record):
        return [(tuple(d["box"]), d["digit"]) for d in record["detections"]]

    def expected(image, still, index=0):
        decoded = cv2.imdecode(np.frombuffer(encoded(image), np.uint8), cv2.IMREAD_COLOR)
        result = reader.read(Frame(index=index, image=decoded, source="x", time=0.0, still=still))
        return [(d.box, d.digit) for d in result.detections]

    uploads = [digits(client.post("/api/read", content=encoded(image), headers={"Content-Type": "image/png"}).json())
               for image in pairs]
    with client.websocket_connect("/ws/camera") as camera:
        frames = []
        for image in pairs:
            camera.send_bytes(encoded(image))
            frames.append(digits(camera.receive_json()))
    assert uploads == [expected(image, True) for image in pairs]
    # A camera's frames are numbered, and video frames take the reader's stroke targets in turn.
    assert frames == [expected(image, False, index) for index, image in enumerate(pairs)]
    assert uploads != frames


def test_a_page_drawn_on_a_transparent_ground_is_read_as_the_page(client, page):
    ink = 255 - cv2.cvtColor(page.image, cv2.COLOR_BGR2GRAY)  # the page's strokes as the drawing's opacity
    drawing = np.dstack([np.full(ink.shape + (3,), 25, np.uint8), np.where(ink > 60, ink, 0).astype(np.uint8)])
    numbers = [[n["text"] for n in client.post("/api/read", content=encoded(image),
                                               headers={"Content-Type": "image/png"}).json()["numbers"]]
               for image in (page.image, drawing)]
    assert len(numbers[0]) == 10 and numbers[1] == numbers[0]


def test_a_name_given_in_the_query_is_only_echoed_as_the_source(client, page):
    response = client.post("/api/read", params={"name": "../../etc/passwd"}, content=encoded(page.image),
                           headers={"Content-Type": "image/png"})
    assert response.status_code == 200
    assert response.json()["source"] == "../../etc/passwd"


def test_bytes_that_are_not_an_image_are_refused_with_400(client):
    response = client.post("/api/read", content=b"%PDF-1.7 not an image at all",
                           headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 400
    assert "not an image" in response.json()["detail"]


def test_a_body_declared_as_text_is_refused_with_415(client):
    response = client.post("/api/read", content=b"12 34", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "text/plain" in response.json()["detail"]


def test_an_empty_body_is_refused_with_400(client):
    response = client.post("/api/read", content=b"", headers={"Content-Type": "image/png"})
    assert response.status_code == 400
    assert "empty" in response.json()["detail"]


def test_a_form_without_the_image_field_is_refused_with_400(client):
    response = client.post("/api/read", data={"note": "no file here"},
                           files={"other": ("a.txt", b"x", "text/plain"), "more": ("b.txt", b"y", "text/plain")})
    assert response.status_code == 400
    assert "'image' field" in response.json()["detail"]


def test_an_upload_over_the_size_cap_is_refused_with_413(client):
    limit = client.app.state.limits.max_bytes
    oversized = b"\xff\xd8\xff" + bytes(limit)
    response = client.post("/api/read", content=oversized, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_a_streamed_upload_is_cut_off_at_the_size_cap_without_a_length_header(reader):
    small = TestClient(create_app(reader, UploadLimits(max_bytes=100_000)))

    def chunks():  # no Content-Length: sent chunked, so only the running count can stop it
        for _ in range(50):
            yield bytes(10_000)

    response = small.post("/api/read", content=chunks(), headers={"Content-Type": "image/png"})
    assert response.status_code == 413
    assert "0.1 MB" in response.json()["detail"]


def test_a_small_file_of_huge_pixel_count_is_refused_with_400_before_decoding(client):
    limit = client.app.state.limits.max_pixels
    side = int(np.sqrt(limit)) + 100
    bomb = encoded(np.zeros((side, side), np.uint8))
    assert len(bomb) < 1_000_000  # small on the wire, huge once decoded
    response = client.post("/api/read", content=bomb, headers={"Content-Type": "image/png"})
    assert response.status_code == 400
    assert "megapixels" in response.json()["detail"]


def test_uploads_are_never_written_to_disk(reader, page, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise AssertionError("the server tried to write an upload to a file")

    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    data = encoded(cv2.resize(page.image, (2560, 1440)))
    assert len(data) > 2 * 1024 * 1024  # over python-multipart's default in-memory size (1 MiB)
    response = TestClient(create_app(reader)).post("/api/read", files={"image": ("big.png", data, "image/png")})
    assert response.status_code == 200, response.text
    assert [number["text"] for number in response.json()["numbers"]] == [number.text for number in page.numbers]


def test_the_camera_websocket_answers_each_frame_in_order_and_survives_bad_frames(client):
    video = make_video(0, StrokeGlyphs(), frames=2, size=(640, 480), condition="clean")
    with client.websocket_connect("/ws/camera") as socket_:
        socket_.send_bytes(encoded(video.frames[0], ".jpg"))
        first = socket_.receive_json()
        socket_.send_bytes(b"not a jpeg")
        broken = socket_.receive_json()
        socket_.send_text("hello")
        text = socket_.receive_json()
        socket_.send_bytes(encoded(video.frames[1], ".jpg"))
        second = socket_.receive_json()
    assert (first["source"], first["frame"], first["width"], first["height"]) == ("camera", 0, 640, 480)
    assert sorted(number["text"] for number in first["numbers"]) == sorted(n.text for n in video.truth[0].numbers)
    assert all(len(detection["top"]) == 3 for detection in first["detections"])
    assert "not an image" in broken["error"]
    assert "binary" in text["error"]
    assert second["frame"] == 2  # frames are counted as received, bad ones included
    assert sorted(number["text"] for number in second["numbers"]) == sorted(n.text for n in video.truth[1].numbers)


def test_concurrent_reads_through_one_reader_give_the_same_answers_as_one_at_a_time(reader):
    video = make_video(5, StrokeGlyphs(), frames=4, size=(640, 480), condition="clean")
    serial = SerialReader(reader)
    expected = [[n.text for n in serial.read(frame, "x").numbers] for frame in video.frames]
    answers: dict[int, list[str]] = {}

    def read(index: int) -> None:
        answers[index] = [n.text for n in serial.read(video.frames[index % 4], "x").numbers]

    threads = [threading.Thread(target=read, args=(index,)) for index in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(answers[index] == expected[index % 4] for index in range(12))


def test_uploads_are_decoded_one_at_a_time_not_all_at_once(reader, page, monkeypatch):
    # Twenty small uploads of 50-megapixel images, decoded together outside the reader's lock, held 5 GB at once.
    from digitrec.web import app as web_app
    from digitrec.web.upload import DEFAULT_LIMITS

    serial = SerialReader(reader)
    decoding, most = [], []
    decode = web_app.decode_image

    def watched(data, limits):
        decoding.append(1)
        most.append(len(decoding))
        time.sleep(0.05)
        try:
            return decode(data, limits)
        finally:
            decoding.pop()

    monkeypatch.setattr(web_app, "decode_image", watched)
    data = encoded(page.image)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(web_app.read_encoded(serial, data, DEFAULT_LIMITS, "x")))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 4 and max(most) == 1
    assert all([n["text"] for n in answer["numbers"]] == [n.text for n in page.numbers] for answer in answers)


def test_the_api_is_documented_with_both_ways_to_send_an_image(client):
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/api/read"]["post"]
    assert set(operation["requestBody"]["content"]) == {"image/*", "multipart/form-data"}
    assert {"200", "400", "413", "415"} <= set(operation["responses"])
    assert client.get("/docs").status_code == 200


def test_the_page_and_its_files_load_nothing_from_outside(client):
    page = client.get("/")
    assert page.status_code == 200 and "digitrec" in page.text
    for path in sorted(STATIC_DIR.iterdir()):
        text = path.read_text(encoding="utf-8")
        assert client.get(f"/static/{path.name}").status_code == 200
        # No absolute URL in a src, href, url() or import: everything comes from this server.
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|import\s.*//""", text), path


def test_a_busy_port_is_a_clear_error_for_the_server_and_the_cli(reader, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerError, match=f"127.0.0.1:{port}.*--port"):
            WebServer(create_app(reader), "127.0.0.1", port)
        assert live_digits.main(["--serve", "--port", str(port), "--model", str(MODEL)]) == 2
    assert "pass another --port" in capsys.readouterr().err


def test_the_cli_serves_the_page_on_localhost_and_stops_cleanly_on_ctrl_c():
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "live_digits.py"), "--serve", "--port", "0", "--model", str(MODEL)],
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        announced = ""
        with selectors.DefaultSelector() as waiting:
            waiting.register(server.stderr, selectors.EVENT_READ)
            deadline = time.monotonic() + 60
            while "Ctrl-C" not in announced and time.monotonic() < deadline and server.poll() is None:
                if waiting.select(timeout=1):
                    announced += server.stderr.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", announced)
        assert url, announced
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy from the env
        with direct.open(url.group(0), timeout=30) as page:
            assert page.status == 200 and b"digitrec" in page.read()
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
        assert "Traceback" not in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_serving_with_a_missing_model_is_a_clear_error(tmp_path, capsys):
    assert live_digits.main(["--serve", "--port", "0", "--model", str(tmp_path / "none.keras")]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_only_loopback_addresses_count_as_local():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")


def test_a_heic_upload_is_refused_with_what_to_send_instead(client):
    response = client.post("/api/read", content=b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200),
                           headers={"Content-Type": "image/heic"})
    assert response.status_code in (400, 415)
    assert "HEIC" in response.json()["detail"] and "JPEG" in response.json()["detail"]


@pytest.mark.parametrize("content_type, body, message", [
    ("multipart/form-data", b"x", "no boundary"),
    ("multipart/form-data; boundary=XYZ", b"not a form at all", "could not be parsed"),
    ("multipart/form-data; boundary=XYZ", b"--XYZ--\r\n", "no file"),
    ("multipart/form-data; boundary=" + "B" * 5000, b"x", "could not be parsed"),  # was a 500
], ids=["no boundary", "not a form", "no file", "boundary too long"])  # fmt: skip
def test_a_malformed_form_is_a_400_naming_what_is_wrong(client, content_type, body, message):
    response = client.post("/api/read", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]
