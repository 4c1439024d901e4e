// The digitrec page: photo upload, the browser's camera over a WebSocket, and a drawing pad.
// Every reading is done by the server's DigitReader; this file only sends images and draws answers.
"use strict";

const BOX_COLOUR = "rgb(0, 200, 0)";      // digitrec.annotate.BOX_COLOUR
const NUMBER_COLOUR = "rgb(255, 140, 0)"; // digitrec.annotate.NUMBER_COLOUR
const CAMERA_JPEG_QUALITY = 0.85;
const DRAW_READ_DELAY_MS = 200;           // debounce: read the drawing this long after the pen last moved
// The reader takes long straight strokes for ruled lines (over 15 % of the frame's width or 30 % of its
// height) and skips marks taller than 70 % of it, all relative to the frame. So the drawing is sent at half
// size in the middle of a white 1280x720 frame, where its digits are the size of digits on a photographed page.
const DRAW_FRAME = { width: 1280, height: 720 };
const DRAW_SCALE = 0.5;

const $ = (selector, root = document) => root.querySelector(selector);

// ------------------------------------------------------------------ shared

const PHOTO_KINDS = "JPEG, PNG, BMP, TIFF, WebP, GIF or AVIF";

async function readImage(blob, name, annotate) {
  const query = new URLSearchParams({ annotate: String(annotate), name });
  if (blob.size === 0) throw new Error(`${name} is empty`);
  let response;
  try {
    response = await fetch(`/api/read?${query}`, {
      method: "POST",
      body: blob,
      headers: { "Content-Type": blob.type || "application/octet-stream" },
    });
  } catch (error) {
    throw new Error("The server cannot be reached: is live_digits.py --serve still running? Start it and try again.");
  }
  const answer = await response.json().catch(() => ({ detail: `the server answered ${response.status}` }));
  if (response.status === 415) throw new Error(`${name} is not an image this page reads (${PHOTO_KINDS})`);
  if (!response.ok) throw new Error(answer.detail || `the server answered ${response.status}`);
  return answer;
}

const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

function showNumbers(container, numbers) {
  container.replaceChildren(
    ...numbers.map((number) => {
      const chip = document.createElement("span");
      chip.className = "number";
      chip.textContent = number.text;
      chip.title = `confidence ${(number.confidence * 100).toFixed(1)} %`;
      return chip;
    }),
  );
}

function topText(detection) {
  return (detection.top || []).map((t) => `${t.digit} ${(t.probability * 100).toFixed(1)} %`).join(", ");
}

// Boxes, digits and numbers on a canvas the size of the frame, in the colours of digitrec.annotate.
function drawOverlay(canvas, result) {
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  const scale = Math.max(1, canvas.height / 480);
  context.lineWidth = 2 * scale;
  context.font = `bold ${Math.round(16 * scale)}px system-ui, sans-serif`;
  context.textBaseline = "bottom";
  const label = (text, x, y, colour) => {
    const width = context.measureText(text).width + 8 * scale;
    const height = 20 * scale;
    context.fillStyle = colour;
    context.fillRect(x, y - height, width, height);
    context.fillStyle = "#fff";
    context.fillText(text, x + 4 * scale, y - 2 * scale);
  };
  for (const number of result.numbers) {
    const [x, y, w, h] = number.box;
    const pad = Math.max(2, h / 10);
    context.strokeStyle = NUMBER_COLOUR;
    context.strokeRect(x - pad, y - pad, w + 2 * pad, h + 2 * pad);
    label(number.text, x - pad, y - pad - 2, NUMBER_COLOUR);
  }
  for (const detection of result.detections) {
    const [x, y, w, h] = detection.box;
    context.strokeStyle = BOX_COLOUR;
    context.strokeRect(x, y, w, h);
    label(String(detection.digit), x, y + h + 22 * scale, BOX_COLOUR);
  }
}

// ------------------------------------------------------------------ tabs

function showTab(name) {
  const tabs = [...document.querySelectorAll("[data-tab]")];
  if (!tabs.some((tab) => tab.dataset.tab === name)) name = "photo";
  for (const tab of tabs) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== name;
  if (name !== "camera") camera.stop();
}

// ------------------------------------------------------------------ photo

const photo = {
  limits: null,

  async init() {
    const input = $("#photo-input");
    const zone = $("#dropzone");
    input.addEventListener("change", () => {
      photo.readFiles([...input.files]);
      input.value = "";
    });
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("keydown", (event) => {
      // The file input itself is hidden; from the keyboard the drop zone opens the chooser.
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault();
      input.click();
    });
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      photo.readFiles([...event.dataTransfer.files]);
    });
    try {
      photo.limits = await (await fetch("/api/limits")).json();
      $("#photo-limits").textContent =
        `${PHOTO_KINDS}, up to ${(photo.limits.max_bytes / 1e6).toFixed(0)} MB ` +
        `and ${(photo.limits.max_pixels / 1e6).toFixed(0)} megapixels each.`;
    } catch (error) {
      // The server still enforces its limits; the hint is only a courtesy.
    }
  },

  async readFiles(files) {
    const results = $("#photo-results");
    const cards = files.map((file) => {
      const card = $("#result-template").content.firstElementChild.cloneNode(true);
      $(".result-name", card).textContent = file.name;
      $(".result-summary", card).textContent = "reading…";
      card.dataset.name = file.name;
      card.dataset.state = "reading";
      return card;
    });
    results.prepend(...cards); // newest batch on top, in the order chosen
    // One at a time: the server reads one image at a time anyway, and answers arrive in order.
    for (const [index, file] of files.entries()) {
      const card = cards[index];
      try {
        if (photo.limits && file.size > photo.limits.max_bytes) {
          throw new Error(`${file.name} is ${(file.size / 1e6).toFixed(1)} MB; ` +
            `the limit is ${(photo.limits.max_bytes / 1e6).toFixed(1)} MB: scale it down or save it as JPEG`);
        }
        photo.showResult(card, await readImage(file, file.name, true));
      } catch (error) {
        card.classList.add("failed");
        card.dataset.state = "failed";
        const summary = $(".result-summary", card);
        summary.textContent = error.message;
        summary.classList.add("error");
        for (const part of card.querySelectorAll(".annotated, .numbers-line, details, .download")) part.remove();
      }
    }
  },

  showResult(card, result) {
    const { annotated_image: annotated, server_ms: serverMs, warnings = [], ...contract } = result;
    $(".annotated", card).src = annotated;
    $(".annotated", card).alt = `${result.source} with each digit boxed and read`;
    $(".result-summary", card).textContent =
      `${plural(result.detections.length, "digit")} in ${plural(result.numbers.length, "number")}, ` +
      `${result.width}×${result.height} px, read in ${serverMs} ms`;
    const warning = $(".result-warning", card);
    warning.textContent = warnings.join(" ");
    warning.hidden = warnings.length === 0;
    showNumbers($(".numbers", card), result.numbers);
    $("summary", card).textContent = `Digits (${result.detections.length})`;
    $("tbody", card).replaceChildren(
      ...result.detections.map((detection) => {
        const row = document.createElement("tr");
        for (const text of [detection.digit, detection.confidence.toFixed(3), topText(detection),
          `[${detection.box.join(", ")}]`]) {
          const cell = document.createElement("td");
          cell.textContent = text;
          row.append(cell);
        }
        return row;
      }),
    );
    const download = $(".download", card);
    const json = new Blob([JSON.stringify(contract, null, 2) + "\n"], { type: "application/json" });
    download.href = URL.createObjectURL(json);
    download.download = `${result.source.replace(/\.[^.]*$/, "") || "digits"}.json`;
    card.dataset.state = "done";
  },
};

// ------------------------------------------------------------------ camera

const camera = {
  stream: null,
  socket: null,
  grab: document.createElement("canvas"),
  sentAt: 0,
  lastSentFrame: -1,
  presentedFrames: 0,
  waitingForFrame: false,
  sent: 0,
  received: 0, // answers, errors included
  answers: 0,
  timings: [], // per answered frame: {round_trip_ms, server_ms}, for python -m digitrec.web.bench --browser

  status(text, isError = false) {
    const status = $("#camera-status");
    status.textContent = text;
    status.classList.toggle("error", isError);
  },

  session: 0, // each start and stop makes a new one; a start finding another session on waking has been stopped

  async start() {
    const video = $("#camera-video");
    const session = ++camera.session;
    $("#camera-start").disabled = true;
    if (!navigator.mediaDevices) {
      $("#camera-start").disabled = false;
      camera.status("The browser offers the camera only to a secure page: open this page as http://localhost:" +
        `${location.port || 80} on the computer running the server, or over HTTPS. Photo and Draw work here.`, true);
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 } },
        audio: false,
      });
    } catch (error) {
      if (session !== camera.session) return;
      $("#camera-start").disabled = false;
      camera.status(`No camera: ${error.message}. Allow the camera for this page, or use Photo or Draw.`, true);
      return;
    }
    if (session !== camera.session) { // stopped (another tab, or Stop) while the browser asked: let it go
      for (const track of stream.getTracks()) track.stop();
      return;
    }
    camera.stream = stream;
    video.srcObject = stream;
    try {
      await video.play();
    } catch (error) {
      if (session !== camera.session) return; // stopped while it began to play
      camera.status(`The camera's video did not play: ${error.message}. Press Start to try again.`, true);
      camera.stop();
      return;
    }
    if (session !== camera.session) return;
    camera.watchFrames(video);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/camera`);
    camera.socket = socket;
    socket.onopen = () => camera.sendFrame();
    socket.onmessage = (event) => camera.onAnswer(JSON.parse(event.data));
    socket.onclose = () => {
      if (camera.socket !== socket) return; // an earlier session, already stopped
      camera.status("The connection to the server closed; press Start to try again.", true);
      camera.stop();
    };
    $("#camera-stop").disabled = false;
    camera.status("starting…");
  },

  // Counts the frames the camera presents, so a frame is sent only once and only when new.
  watchFrames(video) {
    if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
    const onFrame = () => {
      if (!camera.stream) return;
      camera.presentedFrames += 1;
      if (camera.waitingForFrame) camera.sendFrame();
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  },

  // At most one frame is in flight: the next is sent when the answer to this one has arrived,
  // so the overlay never lags behind the camera however slow the server is.
  sendFrame() {
    const video = $("#camera-video");
    if (!camera.socket || camera.socket.readyState !== WebSocket.OPEN) return;
    const hasFrameCounter = "requestVideoFrameCallback" in HTMLVideoElement.prototype;
    if (!video.videoWidth || (hasFrameCounter && camera.presentedFrames === camera.lastSentFrame)) {
      camera.waitingForFrame = true;
      if (!hasFrameCounter) requestAnimationFrame(() => camera.sendFrame());
      return;
    }
    camera.waitingForFrame = false;
    camera.lastSentFrame = camera.presentedFrames;
    const { grab } = camera;
    grab.width = video.videoWidth;
    grab.height = video.videoHeight;
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    camera.sentAt = performance.now();
    grab.toBlob((blob) => {
      if (!camera.socket || camera.socket.readyState !== WebSocket.OPEN) return;
      camera.socket.send(blob);
      camera.sent += 1;
    }, "image/jpeg", CAMERA_JPEG_QUALITY);
  },

  onAnswer(result) {
    const roundTrip = performance.now() - camera.sentAt;
    camera.received += 1;
    if (result.error) {
      camera.status(result.error, true);
    } else {
      const overlay = $("#camera-overlay");
      if (overlay.width !== result.width) overlay.width = result.width;
      if (overlay.height !== result.height) overlay.height = result.height;
      drawOverlay(overlay, result);
      showNumbers($("#camera-numbers"), result.numbers);
      camera.answers += 1;
      camera.timings.push({ round_trip_ms: roundTrip, server_ms: result.server_ms });
      if (camera.timings.length > 1000) camera.timings.shift();
      camera.status(`${result.width}×${result.height}, round trip ${roundTrip.toFixed(0)} ms ` +
        `(server ${result.server_ms} ms), ${result.detections.length} digits`);
      $("#camera-panel").dataset.answers = String(camera.answers);
    }
    camera.sendFrame();
  },

  stop() {
    camera.session += 1; // a start still waiting for the camera gives up when it wakes
    const socket = camera.socket;
    camera.socket = null;
    if (socket) socket.close();
    if (camera.stream) for (const track of camera.stream.getTracks()) track.stop();
    camera.stream = null;
    camera.waitingForFrame = false;
    $("#camera-video").srcObject = null;
    const overlay = $("#camera-overlay");
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
    $("#camera-start").disabled = false;
    $("#camera-stop").disabled = true;
  },
};

// ------------------------------------------------------------------ draw

const pad = {
  drawing: false,
  last: null,
  timer: null,
  inFlight: false,
  dirty: false,
  inked: false,
  reads: 0,

  init() {
    const canvas = $("#draw-canvas");
    pad.clear();
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      pad.drawing = true;
      pad.last = pad.point(event);
      pad.line(pad.last, pad.last);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!pad.drawing) return;
      const point = pad.point(event);
      pad.line(pad.last, point);
      pad.last = point;
    });
    for (const end of ["pointerup", "pointercancel"]) {
      canvas.addEventListener(end, () => {
        pad.drawing = false;
        pad.scheduleRead();
      });
    }
    $("#draw-clear").addEventListener("click", () => pad.clear());
  },

  point(event) {
    const canvas = $("#draw-canvas");
    const bounds = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - bounds.left) * canvas.width) / bounds.width,
      y: ((event.clientY - bounds.top) * canvas.height) / bounds.height,
    };
  },

  line(from, to) {
    const context = $("#draw-canvas").getContext("2d");
    context.strokeStyle = "#111";
    context.lineCap = "round";
    context.lineJoin = "round";
    context.lineWidth = Number($("#draw-pen").value);
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
    pad.inked = true;
    pad.scheduleRead();
  },

  clear() {
    const canvas = $("#draw-canvas");
    const context = canvas.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    pad.inked = false;
    pad.show({ detections: [], numbers: [] });
    $("#draw-status").textContent = "Draw digits with the mouse or a finger; they are read as you draw.";
  },

  scheduleRead() {
    clearTimeout(pad.timer);
    pad.timer = setTimeout(() => pad.read(), DRAW_READ_DELAY_MS);
  },

  async read() {
    if (!pad.inked) return;
    if (pad.inFlight) {
      pad.dirty = true; // read again once the answer in flight is in
      return;
    }
    pad.inFlight = true;
    pad.dirty = false;
    const canvas = $("#draw-canvas");
    const framed = document.createElement("canvas");
    framed.width = DRAW_FRAME.width;
    framed.height = DRAW_FRAME.height;
    const left = (framed.width - canvas.width * DRAW_SCALE) / 2;
    const top = (framed.height - canvas.height * DRAW_SCALE) / 2;
    const context = framed.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, framed.width, framed.height);
    context.drawImage(canvas, left, top, canvas.width * DRAW_SCALE, canvas.height * DRAW_SCALE);
    // Boxes come back in the frame's pixels; the pad's overlay wants the pad's.
    const toPad = ([x, y, w, h]) => [(x - left) / DRAW_SCALE, (y - top) / DRAW_SCALE, w / DRAW_SCALE, h / DRAW_SCALE];
    try {
      const blob = await new Promise((resolve) => framed.toBlob(resolve, "image/png"));
      const result = await readImage(blob, "drawing.png", false);
      if (pad.inked) {
        pad.show({
          detections: result.detections.map((d) => ({ ...d, box: toPad(d.box) })),
          numbers: result.numbers.map((n) => ({ ...n, box: toPad(n.box) })),
        });
      }
      pad.reads += 1;
      $("#draw-panel").dataset.reads = String(pad.reads);
      $("#draw-status").textContent = `read in ${result.server_ms} ms`;
      $("#draw-status").classList.remove("error");
    } catch (error) {
      $("#draw-status").textContent = error.message;
      $("#draw-status").classList.add("error");
    } finally {
      pad.inFlight = false;
      if (pad.dirty) pad.read();
    }
  },

  show(result) {
    drawOverlay($("#draw-overlay"), result);
    showNumbers($("#draw-numbers"), result.numbers);
    // Reading order: by number, then left to right within it.
    const ordered = [...result.detections].sort((a, b) => a.number - b.number || a.box[0] - b.box[0]);
    $("#draw-digits").replaceChildren(
      ...ordered.map((detection) => {
        const card = document.createElement("div");
        card.className = "digit-card";
        card.dataset.digit = String(detection.digit);
        const digit = document.createElement("div");
        digit.className = "digit";
        digit.textContent = detection.digit;
        const list = document.createElement("ol");
        for (const top of detection.top || []) {
          const item = document.createElement("li");
          item.dataset.digit = String(top.digit);
          const bar = document.createElement("span");
          bar.className = "bar";
          bar.style.width = `${Math.max(2, top.probability * 100)}%`;
          const percent = document.createElement("span");
          percent.textContent = top.probability < 0.001 ? "< 0.1 %" : `${(top.probability * 100).toFixed(1)} %`;
          const name = document.createElement("span");
          name.textContent = top.digit;
          item.append(name, bar, percent);
          list.append(item);
        }
        card.append(digit, list);
        return card;
      }),
    );
  },
};

// ------------------------------------------------------------------ start

document.addEventListener("DOMContentLoaded", () => {
  photo.init();
  pad.init();
  $("#camera-start").addEventListener("click", () => camera.start());
  $("#camera-stop").addEventListener("click", () => {
    camera.stop();
    camera.status("stopped");
  });
  window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));
  showTab(location.hash.slice(1) || "photo");
});
