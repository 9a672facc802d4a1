// The facegate console: a page that calls this server's public /v1 API with fetch, as any
// client would. No build step, no dependency: plain browser JavaScript.
"use strict";

const KEY_STORAGE = "facegate.apiKey"; // sessionStorage: gone when the tab closes
const COLOURS = ["#e53935", "#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00897b"];
const $ = (id) => document.getElementById(id);

const state = { photo: null, image: null, stream: null, collections: [], enrollments: [] };

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// One call of the API: the envelope's data on success, an ApiError with the envelope's message
// and the x-facegate-error code otherwise.
async function api(method, path, body) {
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (!key) throw new ApiError(0, "no_key", "paste an API key first (section 1)");
  const headers = { "x-api-key": key, accept: "application/json" };
  let payload;
  if (body instanceof FormData) {
    payload = body; // the browser writes the multipart boundary itself
  } else if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/v1${path}`, { method, headers, body: payload });
  } catch (err) {
    throw new ApiError(0, "network", `the server could not be reached (${err.message})`);
  }
  let envelope = null;
  try {
    envelope = await response.json();
  } catch (_) {
    // not JSON: reported below with the status
  }
  if (!response.ok || !envelope || envelope.success === false) {
    const code = response.headers.get("x-facegate-error") || "error";
    const message = (envelope && envelope.message) || response.statusText || "no message";
    throw new ApiError(response.status, code, message);
  }
  return envelope;
}

function showError(err) {
  const box = $("error");
  const status = err.status ? `HTTP ${err.status} ` : "";
  box.textContent = `${status}${err.code || "error"}: ${err.message}`;
  box.dataset.code = err.code || "";
  box.hidden = false;
}

function showResult(text) {
  $("error").hidden = true;
  $("result").textContent = text;
}

// Runs an action on a button press; any failure is shown in the alert box, never swallowed.
function action(id, run) {
  $(id).addEventListener("click", async (event) => {
    event.preventDefault();
    const button = $(id);
    button.disabled = true;
    document.body.setAttribute("aria-busy", "true");
    try {
      await run();
    } catch (err) {
      showError(err instanceof ApiError ? err : new ApiError(0, "console", err.message));
    } finally {
      button.disabled = false;
      document.body.removeAttribute("aria-busy");
    }
  });
}

// --- the key --------------------------------------------------------------------------------

function showKeyState() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  $("key-state").textContent = key
    ? `Using key ${key.slice(0, 19)}… (kept in this tab only).`
    : "No key yet. The key is kept only in this tab (sessionStorage) and sent only to this " +
      "server, in the x-api-key header.";
}

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
  $("api-key").value = "";
  showKeyState();
  try {
    await refresh();
    showResult("key accepted");
  } catch (err) {
    showError(err);
  }
});

$("key-forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_STORAGE);
  showKeyState();
});

// --- the photo ------------------------------------------------------------------------------

async function usePhoto(blob, label) {
  const image = await createImageBitmap(blob, { imageOrientation: "from-image" });
  state.photo = blob;
  state.image = image;
  $("faces").replaceChildren();
  draw([]);
  $("photo-state").textContent = `${label}: ${image.width} × ${image.height} pixels.`;
}

$("photo").addEventListener("change", async () => {
  const file = $("photo").files[0];
  if (!file) return;
  try {
    await usePhoto(file, file.name);
    showResult(`photo ${file.name} loaded`);
  } catch (err) {
    showError(new ApiError(0, "bad_image", `this browser cannot read ${file.name}`));
  }
});

function requirePhoto() {
  if (!state.photo) throw new ApiError(0, "no_photo", "choose a photo or take one first");
  return state.photo;
}

// The camera is optional: without getUserMedia (or on a page not served over https or from
// localhost) its buttons say so.
action("camera-start", async () => {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new ApiError(0, "no_camera", "this browser offers no camera to this page");
  }
  state.stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  const video = $("camera");
  video.srcObject = state.stream;
  video.hidden = false;
  await video.play();
  $("camera-snap").disabled = false;
  $("camera-stop").disabled = false;
});

function stopCamera() {
  if (state.stream) state.stream.getTracks().forEach((track) => track.stop());
  state.stream = null;
  $("camera").hidden = true;
  $("camera-snap").disabled = true;
  $("camera-stop").disabled = true;
}

action("camera-snap", async () => {
  const video = $("camera");
  const still = document.createElement("canvas");
  still.width = video.videoWidth;
  still.height = video.videoHeight;
  still.getContext("2d").drawImage(video, 0, 0);
  const blob = await new Promise((resolve) => still.toBlob(resolve, "image/jpeg", 0.92));
  await usePhoto(new File([blob], "camera.jpg", { type: "image/jpeg" }), "camera photo");
  stopCamera();
  $("camera-snap").disabled = true;
});

$("camera-stop").addEventListener("click", stopCamera);

// --- drawing --------------------------------------------------------------------------------

// Draws the photo scaled to the page and, for each face, its box, its 5 points and its label.
function draw(faces) {
  const canvas = $("canvas");
  const context = canvas.getContext("2d");
  if (!state.image) return;
  const scale = Math.min(1, 900 / state.image.width);
  canvas.width = Math.round(state.image.width * scale);
  canvas.height = Math.round(state.image.height * scale);
  context.drawImage(state.image, 0, 0, canvas.width, canvas.height);
  const line = Math.max(2, canvas.width / 300);
  faces.forEach((face, index) => {
    const colour = COLOURS[index % COLOURS.length];
    const [x1, y1, x2, y2] = face.box.map((v) => v * scale);
    context.strokeStyle = colour;
    context.lineWidth = line;
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    if (face.points) {
      context.fillStyle = colour;
      for (let i = 0; i < 5; i += 1) {
        context.beginPath();
        context.arc(face.points[i] * scale, face.points[i + 5] * scale, line * 1.5, 0, 2 * Math.PI);
        context.fill();
      }
    }
    const label = face.label || `${index + 1}`;
    context.font = `bold ${Math.max(13, Math.round(canvas.width / 45))}px system-ui, sans-serif`;
    const width = context.measureText(label).width + 8;
    const height = Math.max(17, Math.round(canvas.width / 35));
    const top = y1 > height ? y1 - height : y2;
    context.fillStyle = colour;
    context.fillRect(x1 - line / 2, top, width, height);
    context.fillStyle = "#fff";
    context.textBaseline = "middle";
    context.fillText(label, x1 + 4, top + height / 2);
  });
}

// The same faces as text, for screen readers and for anyone who wants the numbers.
function listFaces(faces) {
  const items = faces.map((face, index) => {
    const item = document.createElement("li");
    const [x1, y1, x2, y2] = face.box.map(Math.round);
    item.textContent = `${face.label || `face ${index + 1}`} at (${x1}, ${y1}) – (${x2}, ${y2})`;
    if (face.detail) item.textContent += `: ${face.detail}`;
    item.dataset.name = face.name || "";
    return item;
  });
  $("faces").replaceChildren(...items);
}

function photoForm(field) {
  const form = new FormData();
  form.append(field, requirePhoto(), state.photo.name || "photo.jpg");
  return form;
}

// --- detect and spoof -----------------------------------------------------------------------

action("detect", async () => {
  const envelope = await api("POST", "/facedetect", photoForm("img"));
  const faces = envelope.data.faces.map((face, index) => ({
    box: face.bounding_box.slice(0, 4),
    points: face.points,
    label: `${index + 1}`,
    detail: `confidence ${face.bounding_box[4].toFixed(3)}`,
  }));
  draw(faces);
  listFaces(faces);
  showResult(`${faces.length} face${faces.length === 1 ? "" : "s"} found`);
});

action("spoof", async () => {
  const envelope = await api("POST", "/spdetect", photoForm("img"));
  const { score } = envelope.data;
  showResult(`spoof check: ${envelope.data.class} (probability of a fake ${score.toFixed(4)})`);
});

// --- collections and enrollments ------------------------------------------------------------

function fillSelects(selector, items, describe) {
  document.querySelectorAll(selector).forEach((select) => {
    const previous = select.value;
    const options = items.map((item) => new Option(describe(item), item.id));
    if (select.dataset.none) options.unshift(new Option(select.dataset.none, ""));
    select.replaceChildren(...options);
    if ([...select.options].some((option) => option.value === previous)) select.value = previous;
  });
}

function showCollections() {
  const rows = state.collections.map((collection) => {
    const row = document.createElement("tr");
    row.dataset.id = collection.id;
    const cells = [
      collection.name,
      collection.id,
      String(collection.enrollments.length),
      collection.status,
      collection.trained_at || "never",
    ];
    row.replaceChildren(
      ...cells.map((text) => {
        const cell = document.createElement("td");
        cell.textContent = text;
        return cell;
      }),
    );
    return row;
  });
  $("collections").tBodies[0].replaceChildren(...rows);
  fillSelects(".collection-select", state.collections, (c) => `${c.name} (${c.status})`);
}

async function refresh() {
  const [collections, enrollments] = await Promise.all([
    api("GET", "/collection"),
    api("GET", "/enroll?limit=500"),
  ]);
  state.collections = collections.data;
  state.enrollments = enrollments.data.enrollments;
  showCollections();
  fillSelects(".enrollment-select", state.enrollments, (e) => `${e.name || "(no name)"} (${e.id})`);
}

function selected(id, what) {
  const value = $(id).value;
  if (!value) throw new ApiError(0, "nothing_selected", `choose ${what} first`);
  return value;
}

action("refresh", async () => {
  await refresh();
  showResult("collections and enrollments refreshed");
});

action("create-collection", async () => {
  const name = $("collection-name").value.trim();
  if (!name) throw new ApiError(0, "no_name", "give the new collection a name");
  const envelope = await api("POST", "/collection", {
    name,
    unknowns: $("collection-unknowns").checked,
  });
  await refresh();
  $("collection").value = envelope.data.collection_id;
  $("enroll-collection").value = envelope.data.collection_id;
  showResult(`created collection ${name}: ${envelope.data.collection_id}`);
});

action("enroll", async () => {
  const form = photoForm("img0");
  const name = $("enroll-name").value.trim();
  if (name) form.append("name", name);
  const collection = $("enroll-collection").value;
  if (collection) form.append("collection_id", collection);
  const envelope = await api("POST", "/enroll", form);
  await refresh();
  $("match-enrollment").value = envelope.data.enrollment_id;
  $("add-enrollment").value = envelope.data.enrollment_id;
  showResult(`enrolled ${name || "(no name)"}: ${envelope.data.enrollment_id}`);
});

action("add-to-collection", async () => {
  const collection_id = selected("collection", "a collection");
  const enrollment_id = selected("add-enrollment", "an enrollment");
  await api("PUT", "/collection", { collection_id, enrollment_id });
  await refresh();
  showResult(`enrollment ${enrollment_id} added to collection ${collection_id}`);
});

action("delete-collection", async () => {
  const collection_id = selected("collection", "a collection");
  if (!window.confirm(`Delete collection ${collection_id}? Its enrollments are kept.`)) return;
  await api("DELETE", "/collection", { collection_id });
  await refresh();
  showResult(`collection ${collection_id} deleted`);
});

// Training runs in the background on the server: its status is polled until it settles.
action("train", async () => {
  const collection_id = selected("collection", "a collection");
  await api("POST", "/train", { collection_id });
  showResult(`training collection ${collection_id}…`);
  const deadline = Date.now() + 120000;
  for (;;) {
    await refresh();
    const collection = state.collections.find((c) => c.id === collection_id);
    if (!collection) throw new ApiError(404, "not_found", "the collection is gone");
    if (collection.status !== "training") {
      showResult(`collection ${collection.name} trained: status ${collection.status}`);
      return;
    }
    if (Date.now() > deadline) throw new ApiError(0, "timeout", "training still running");
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
});

// --- identify and match ---------------------------------------------------------------------

action("identify", async () => {
  const form = photoForm("img");
  form.append("collection_id", selected("collection", "a collection"));
  form.append("all_faces", "true");
  const envelope = await api("POST", "/identify", form);
  const faces = (envelope.data.faces || []).map((face) => ({
    box: face.bounding_box.slice(0, 4),
    name: face.name,
    label: face.name || "unknown",
    detail: `score ${face.score.toFixed(4)}` + (face.key ? `, enrollment ${face.key}` : ""),
  }));
  draw(faces);
  listFaces(faces);
  const names = faces.map((face) => face.label).join(", ");
  showResult(`identified ${faces.length} face${faces.length === 1 ? "" : "s"}: ${names}`);
});

action("match", async () => {
  const form = photoForm("img");
  const id = selected("match-enrollment", "an enrollment");
  form.append("id", id);
  form.append("threshold", $("match-threshold").value || "0.5");
  const envelope = await api("POST", "/match", form);
  const pairs = Object.keys(envelope.data)
    .filter((name) => name.endsWith("_score"))
    .map((name) => {
      const match = envelope.data[name.replace("_score", "_match")];
      return `${name.replace("_score", "")}: ${envelope.data[name].toFixed(4)} ` +
        `${match ? "match" : "no match"}`;
    });
  const any = Object.keys(envelope.data).some((name) => name.endsWith("_match") && envelope.data[name]);
  showResult(`match against ${id}: ${any ? "MATCH" : "NO MATCH"}\n${pairs.join("\n")}`);
});

// Enter in a field clicks the form's button (handled above); the page itself never reloads.
["enroll-form", "create-form"].forEach((id) =>
  $(id).addEventListener("submit", (event) => event.preventDefault()),
);

showKeyState();
if (sessionStorage.getItem(KEY_STORAGE)) refresh().catch(showError);
