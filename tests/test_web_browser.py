"""The web page in a real headless Chromium: photos uploaded and dropped, the fake camera, drawing with the mouse.

Needs Debian's chromium (apt-get install -y chromium) and the pip package playwright, which drives it through
`executable_path` (no browser is ever downloaded); skipped without them. The server runs in a thread on a
free port. Screenshots of the camera and drawing modes go to $DIGITREC_WEB_SHOTS when that is set (the README's
come from `DIGITREC_WEB_SHOTS=docs`).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitrec.synth import STROKE_TEMPLATES, StrokeGlyphs, SyntheticVideo, make_page, make_video
from digitrec.web.y4m import write_y4m

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "digits.keras"
CHROMIUM = os.environ.get("DIGITREC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
PAGE_SEEDS = (2, 0)
"""Clean synthetic pages whose numbers the shipped reader reads exactly."""
CAMERA_SEED = 0
"""A clean hand-held video whose numbers the shipped reader reads in every frame."""
CAMERA_SIZE = (640, 480)
TIMEOUT_MS = 30_000
"""Generous: the reader shares two cores with the browser and whatever else runs."""
SHOTS = os.environ.get("DIGITREC_WEB_SHOTS")

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="needs Debian's chromium (apt-get install -y chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="needs playwright for Python (pip install -r requirements.txt)"),
    pytest.mark.skipif(importlib.util.find_spec("fastapi") is None, reason="needs fastapi (pip install -r requirements.txt)"),
    pytest.mark.skipif(not MODEL.is_file(), reason=f"no trained model at {MODEL}: run train.py first"),
]


@pytest.fixture(scope="module")
def camera_video() -> SyntheticVideo:
    return make_video(CAMERA_SEED, StrokeGlyphs(), frames=10, size=CAMERA_SIZE, condition="clean")


@pytest.fixture(scope="module")
def server():
    from digitrec.reader import DigitReader
    from digitrec.web.app import create_app
    from digitrec.web.server import WebServer

    with WebServer(create_app(DigitReader(MODEL)), "127.0.0.1", 0) as running:
        yield running


@pytest.fixture(scope="module")
def playwright():
    """One Playwright for the module: its sync API allows one at a time in a thread."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory, camera_video):
    """A fresh headless Chromium profile whose camera plays the synthetic video in a loop."""
    yield from _browser_with_camera(playwright, tmp_path_factory, camera_video)


def _browser_with_camera(playwright, tmp_path_factory, camera_video):
    folder = tmp_path_factory.mktemp("chromium")
    # Played forwards then backwards, so the loop has no jump from the last frame to the first.
    frames = camera_video.frames + camera_video.frames[-2:0:-1]
    fake_camera = write_y4m(frames, folder / "camera.y4m")
    flags = CHROMIUM_FLAGS + [
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={fake_camera}",
    ]  # fmt: skip
    context = playwright.chromium.launch_persistent_context(
        folder / "profile", executable_path=CHROMIUM, headless=True, args=flags,
        viewport={"width": 1100, "height": 900}, accept_downloads=True,
    )  # fmt: skip
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(browser, server):
    tab = browser.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    yield tab
    tab.close()
    assert not problems, f"the page raised: {problems}"


def shot(page, name: str) -> None:
    """Save what the page shows, down to the end of its content, as a small 64-colour PNG (README-sized)."""
    if not SHOTS:
        return
    import io

    from PIL import Image

    bottom = page.evaluate("Math.ceil(document.querySelector('main').getBoundingClientRect().bottom)")
    screenshot = Image.open(io.BytesIO(page.screenshot(full_page=False))).convert("RGB")
    screenshot = screenshot.crop((0, 0, screenshot.width, min(screenshot.height, bottom + 8)))
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    screenshot.quantize(colors=64).save(Path(SHOTS) / name, optimize=True)


def png_bytes(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def chip_texts(within) -> list[str]:
    """The number chips' texts inside a locator."""
    return within.locator(".number").all_inner_texts()


def test_an_uploaded_photo_shows_its_numbers_annotated_image_and_json(page, server):
    synthetic = make_page(PAGE_SEEDS[0], StrokeGlyphs(), "clean", (1280, 720))
    page.goto(server.url + "#photo")
    page.set_input_files("#photo-input", files=[
        {"name": "page.png", "mimeType": "image/png", "buffer": png_bytes(synthetic.image)}])
    card = page.locator('.result[data-name="page.png"][data-state="done"]')
    card.wait_for()
    assert chip_texts(card) == [number.text for number in synthetic.numbers]
    assert page.evaluate("document.querySelector('.result .annotated').naturalWidth") == 1280
    with page.expect_download() as download:
        card.locator(".download").click()
    record = json.loads(Path(download.value.path()).read_text())
    assert download.value.suggested_filename == "page.json"
    assert [number["text"] for number in record["numbers"]] == [number.text for number in synthetic.numbers]
    assert set(record) >= {"source", "frame", "width", "height", "detections", "numbers"}
    assert "annotated_image" not in record and "warnings" not in record
    assert card.locator(".result-warning").is_hidden()


def test_a_tiff_of_several_pages_shows_that_only_its_first_was_read(page, server):
    import io

    from PIL import Image

    synthetic = make_page(PAGE_SEEDS[0], StrokeGlyphs(), "clean", (1280, 720))
    first = Image.fromarray(cv2.cvtColor(synthetic.image, cv2.COLOR_BGR2RGB))
    tiff = io.BytesIO()
    first.save(tiff, format="TIFF", save_all=True, append_images=[Image.new("RGB", first.size, "white")])
    page.goto(server.url + "#photo")
    page.set_input_files("#photo-input", files=[{"name": "scan.tif", "mimeType": "image/tiff", "buffer": tiff.getvalue()}])
    card = page.locator('.result[data-name="scan.tif"][data-state="done"]')
    card.wait_for()
    assert chip_texts(card) == [number.text for number in synthetic.numbers]
    warning = card.locator(".result-warning")
    assert warning.is_visible() and "2 pages" in warning.inner_text()


def test_photos_dropped_together_are_each_read_and_a_non_image_is_explained(page, server):
    pages = [make_page(seed, StrokeGlyphs(), "clean", (1280, 720)) for seed in PAGE_SEEDS]
    files = [{"name": f"page{seed}.png", "type": "image/png", "data": base64.b64encode(png_bytes(p.image)).decode()}
             for seed, p in zip(PAGE_SEEDS, pages)]
    files.append({"name": "notes.txt", "type": "text/plain", "data": base64.b64encode(b"1 2 3").decode()})
    page.goto(server.url + "#photo")
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const file of files) {
                const bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], file.name, { type: file.type }));
            }
            return transfer;
        }""",
        files,
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    page.locator('.result[data-state="reading"]').first.wait_for(state="detached")
    for seed, synthetic in zip(PAGE_SEEDS, pages):
        card = page.locator(f'.result[data-name="page{seed}.png"]')
        assert card.get_attribute("data-state") == "done"
        assert chip_texts(card) == [number.text for number in synthetic.numbers]
    failed = page.locator('.result[data-name="notes.txt"]')
    assert failed.get_attribute("data-state") == "failed"
    assert "not an image" in failed.locator(".result-summary").inner_text()


def test_the_camera_is_read_live_with_boxes_and_numbers_over_the_video(page, server, camera_video):
    truth = sorted(number.text for number in camera_video.truth[0].numbers)
    page.goto(server.url + "#camera")
    page.click("#camera-start")
    # Several answers in a row, and never more than one frame in flight: the overlay cannot lag behind.
    in_flight = set()
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while page.evaluate("camera.answers") < 5:
        assert time.monotonic() < deadline, f"{page.evaluate('camera.answers')} answers; {page.inner_text('#camera-status')}"
        in_flight.add(page.evaluate("camera.sent - camera.received"))
        page.wait_for_timeout(20)
    assert in_flight <= {0, 1}, in_flight
    page.wait_for_function(
        """(truth) => {
            const seen = [...document.querySelectorAll('#camera-numbers .number')].map((chip) => chip.textContent);
            return JSON.stringify(seen.sort()) === JSON.stringify(truth);
        }""",
        arg=truth,
    )
    green_pixels = page.evaluate(
        """() => {
            const overlay = document.querySelector('#camera-overlay');
            const pixels = overlay.getContext('2d').getImageData(0, 0, overlay.width, overlay.height).data;
            let count = 0;
            for (let i = 0; i < pixels.length; i += 4) {
                if (pixels[i + 3] > 200 && pixels[i + 1] > 150 && pixels[i] < 60 && pixels[i + 2] < 60) count++;
            }
            return [overlay.width, overlay.height, count];
        }"""
    )
    assert green_pixels[:2] == list(CAMERA_SIZE)
    assert green_pixels[2] > 500, "no digit boxes drawn over the video"
    assert "round trip" in page.inner_text("#camera-status")
    shot(page, "web_camera.png")
    page.click("#camera-stop")


def template_strokes(digit: int) -> list[np.ndarray]:
    """The first way of writing `digit` in digitrec.synth's stroke templates: strokes of (x, y) in [0, 1]."""
    strokes = []
    for stroke in STROKE_TEMPLATES[digit][0].split("|"):
        _, *points = stroke.split()
        strokes.append(np.array([point.split(",") for point in points], float) / 100.0)
    return strokes


def draw_digit(page, digit: int, left: float, top: float, height: float) -> None:
    """Move the mouse along the digit's strokes, button down, as a person drawing it would."""
    width = 0.62 * height
    for stroke in template_strokes(digit):
        points = [(left + x * width, top + y * height) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=8)
        page.mouse.up()


@pytest.mark.parametrize("digits", ["7", "4", "3", "52"])
def test_digits_drawn_with_the_mouse_are_read_with_their_top_three(page, server, digits):
    page.goto(server.url + "#draw")
    canvas = page.locator("#draw-canvas").bounding_box()
    height = canvas["height"] * 0.6
    for index, digit in enumerate(digits):
        left = canvas["x"] + canvas["width"] * 0.3 + index * height * 0.9
        draw_digit(page, int(digit), left, canvas["y"] + canvas["height"] * 0.2, height)
    # Read as drawn: wait for the answer to the finished drawing (reads in flight are for partial strokes).
    page.wait_for_function(
        "(digits) => [...document.querySelectorAll('#draw-digits .digit-card')]"
        ".map((card) => card.dataset.digit).join('') === digits",
        arg=digits,
    )
    assert chip_texts(page.locator("#draw-numbers")) == [digits]
    for card in page.locator("#draw-digits .digit-card").all():
        top = card.locator("li").all()
        assert len(top) == 3
        assert top[0].get_attribute("data-digit") == card.get_attribute("data-digit")
    if digits == "52":
        shot(page, "web_draw.png")
    page.click("#draw-clear")
    assert page.locator("#draw-digits .digit-card").count() == 0


def test_the_photo_chooser_opens_from_the_keyboard(page, server):
    page.goto(server.url + "#photo")
    # The hidden file input's click is what opens the chooser (watched here rather than the dialog itself, whose
    # interception by Playwright can lose the race on a loaded machine).
    page.evaluate("document.querySelector('#photo-input').addEventListener('click', () => { window.__chosen = true; })")
    page.focus("#dropzone")
    page.keyboard.press("Enter")
    page.wait_for_function("window.__chosen === true")
    assert page.evaluate("document.querySelector('#photo-input').multiple")


def test_a_server_that_cannot_be_reached_is_explained_with_what_to_do(page, server):
    page.goto(server.url + "#photo")
    page.route("**/api/read*", lambda route: route.abort())
    page.set_input_files("#photo-input", files=[
        {"name": "page.png", "mimeType": "image/png", "buffer": png_bytes(np.full((60, 80, 3), 255, np.uint8))}])
    card = page.locator('.result[data-name="page.png"][data-state="failed"]')
    card.wait_for()
    assert "cannot be reached" in card.locator(".result-summary").inner_text()


@pytest.fixture(scope="module")
def wide_camera_browser(playwright, tmp_path_factory):
    """The same, with a 16:9 camera, as many laptops and phones have."""
    video = make_video(CAMERA_SEED, StrokeGlyphs(), frames=4, size=(640, 360), condition="clean")
    yield from _browser_with_camera(playwright, tmp_path_factory, video)


def test_a_wide_camera_on_a_phone_fills_its_box_so_boxes_lie_on_the_picture(wide_camera_browser, server):
    page = wide_camera_browser.new_page()
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the picture is under 240 px tall
    page.goto(server.url + "#camera")
    page.click("#camera-start")
    page.wait_for_function("camera.answers >= 1")
    box, picture = page.evaluate("""() => {
        const video = document.querySelector('#camera-video');
        return [video.clientHeight / video.clientWidth, video.videoHeight / video.videoWidth];
    }""")
    assert box == pytest.approx(picture, abs=0.02)  # no letterbox: the overlay covers the box
    page.click("#camera-stop")
    page.close()


def test_stopping_while_the_browser_asks_for_the_camera_leaves_no_camera_running(page, server):
    # The permission prompt, stood in for by a delay: Stop (or another tab) comes before the camera does.
    page.add_init_script("""
        window.__streams = [];
        const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
        navigator.mediaDevices.getUserMedia = async (wanted) => {
            await new Promise((resolve) => setTimeout(resolve, 800));
            const stream = await ask(wanted);
            window.__streams.push(stream);
            return stream;
        };
    """)
    page.goto(server.url + "#camera")
    page.click("#camera-start")
    page.click('[data-tab="draw"]')
    page.click('[data-tab="camera"]')
    page.click("#camera-start")
    page.click("#camera-stop")
    page.wait_for_function("window.__streams.length === 2")
    page.wait_for_timeout(200)
    assert page.evaluate("window.__streams.flatMap((s) => s.getTracks()).map((t) => t.readyState)") == ["ended"] * 2
