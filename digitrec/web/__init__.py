"""The web page on the reader: photo upload, the browser's camera and a drawing pad, and POST /api/read.

`app` builds the FastAPI app, `server` runs it on uvicorn, `upload` holds the limits on what clients
send, `y4m` writes videos for Chromium's fake camera, `bench` measures the camera mode's round trip.
Import from those modules: this package imports nothing itself, so `y4m` works without the web stack.
"""
