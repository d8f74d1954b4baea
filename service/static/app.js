// digitserve demo page: vanilla JS, no build, talks to the service's own API only.
"use strict";

(() => {
  const THROTTLE_MS = 150;
  // How long the page waits for an answer, its body included (the metadata, a prediction, an
  // explanation, the status): one still missing then (a stalled proxy, a stuck server) fails as an
  // unreachable server does, and what waited for it is back in use. The server is asked to give up
  // a second earlier (X-Request-Timeout), so that its own 504 says what ran too long.
  const REQUEST_TIMEOUT_S = 30;
  const PEN_WIDTH = 22;
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const child of children) node.append(child);
    return node;
  };

  const state = {
    models: [],
    model: null, // entry of GET /models
    version: "", // "" means the default version
    meta: null, // GET /models/{name}/versions/{v}
    lightInk: true, // white ink on black, like MNIST
    seq: 0, // request sequence: late answers to old requests are dropped
    shown: 0,
    inFlight: 0, // requests for a picture on their way
    preparing: 0, // pictures turned into the bytes of their request: the pad into a PNG, a file decoded onto the pad
    pending: false,
    lastSent: 0,
    drawn: false,
    upload: null, // the uploaded file on the pad, sent again when another version is chosen
    timer: null, // trailing throttle timer while drawing
    explain: true, // overlay the attribution map once the prediction settles
    explainSeq: 0, // explanations: late answers to old requests are dropped
    pimaSeq: 0, // Pima explanations: late answers to old requests are dropped
    pimaAsk: 0, // Pima predictions: an answer for values no longer on the form is dropped
    metaAsk: 0, // metadata: the answer for a model or version no longer chosen is dropped
    metaRead: null, // the metadata being read: for the model or version chosen, or before a prediction
    focusBack: null, // what had the focus in a panel out of use while the metadata is read
  };

  // ---------------------------------------------------------------- HTTP
  function headers(extra = {}) {
    const key = $("api-key").value.trim();
    const all = { ...extra, "X-Request-Timeout": String(REQUEST_TIMEOUT_S - 1) };
    return key ? { ...all, Authorization: `Bearer ${key}` } : all;
  }

  // Aborts a request still unanswered after REQUEST_TIMEOUT_S, the body included.
  const deadline = () => AbortSignal.timeout(REQUEST_TIMEOUT_S * 1000);

  async function api(path, options = {}) {
    let response;
    let body;
    try {
      response = await fetch(path, { ...options, headers: headers(options.headers || {}), signal: deadline() });
      body = await readBody(response);
    } catch (err) {
      if (err.name === "SyntaxError") throw err; // the server answered, in JSON that does not parse
      showUnreachable();
      const why = err.name === "TimeoutError" ? `no answer within ${REQUEST_TIMEOUT_S} s` : err.message;
      throw new Error(`Cannot reach the server (${why}).`);
    }
    if (fromProxy(response, body)) {
      showUnreachable();
      const error = new Error(`Cannot reach the server (the proxy in front of it answered ${statusLine(response)}).`);
      error.status = response.status;
      throw error;
    }
    // The status line was read once at load: it follows the server when it stops and comes back.
    if ($("status").dataset.reach === "no") loadStatus();
    if (!response.ok) {
      const detail = body && body.error ? body.error : statusLine(response);
      const error = new Error(detail);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  // The body as JSON when it says it is, else as text; a failure's body that is not JSON after all
  // (a proxy's, or none) is null.
  async function readBody(response) {
    const type = response.headers.get("content-type") || "";
    if (!type.includes("json")) return response.text();
    try {
      return await response.json();
    } catch (err) {
      if (response.ok) throw err;
      return null;
    }
  }

  // A reverse proxy in front of the service answers 502, 503 or 504 with a page of its own (HTML,
  // or JSON of its own: {"message": ...}) when it cannot reach the service: the server is as
  // unreachable as when the connection fails. The service's own 503 and 504 (busy, not ready, its
  // deadline) are JSON with an "error", and say what is wrong.
  const GATEWAY_ERRORS = [502, 503, 504];
  function fromProxy(response, body) {
    return GATEWAY_ERRORS.includes(response.status) && !(body && typeof body.error === "string");
  }

  // "HTTP 502 Bad Gateway", in place of a body that is not the service's JSON (a proxy's HTML).
  function statusLine(response) {
    return `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
  }

  const enc = encodeURIComponent;
  function modelPath(suffix = "") {
    const name = enc(state.model.name);
    const version = state.version || state.model.default_version;
    return `/models/${name}/versions/${enc(version)}${suffix}`;
  }
  function predictPath(verb = "predict") {
    const name = enc(state.model.name);
    return state.version ? `/models/${name}/versions/${enc(state.version)}/${verb}` : `/models/${name}/${verb}`;
  }

  // The error is an alert: a screen reader says it whenever its text changes. The same message
  // again (a stroke's request failing as the one before did while the server is down) leaves the
  // text as it is, so it stays on screen and is not said again at every stroke; another is said.
  function showError(message) {
    const box = $("error");
    const text = message || "";
    if (box.textContent !== text) box.textContent = text;
    box.hidden = !text;
  }

  // ---------------------------------------------------------------- models and versions
  // The newest news of the server wins: a status check answered after a request found the server
  // unreachable (or after a later check) must not put "Ready" back over it.
  let statusNews = 0;

  async function loadStatus() {
    const asked = ++statusNews;
    let response;
    let body = null;
    try {
      response = await fetch("/readyz", { headers: headers(), signal: deadline() });
      body = await readBody(response).catch(() => null);
    } catch {
      if (asked === statusNews) showUnreachable();
      return;
    }
    if (asked !== statusNews) return;
    if (fromProxy(response, body)) {
      showUnreachable();
      return;
    }
    $("status").textContent = response.ok ? "Ready" : "Not ready: some models are still loading or failed";
    $("status").dataset.ready = response.ok ? "yes" : "no";
    $("status").dataset.reach = "yes";
  }

  function showUnreachable() {
    statusNews += 1;
    $("status").textContent = "Server unreachable";
    $("status").dataset.ready = "no";
    $("status").dataset.reach = "no";
  }

  // The models, at load and again when the API key changes (read with the key): the model and
  // version chosen stay when they are still listed (the version still available), else ?model=
  // in the URL, else mnist, with its default version.
  async function loadModels() {
    const body = await api("/models");
    const chosen = state.model ? { name: state.model.name, version: state.version } : null;
    state.models = body.models || [];
    const select = $("model");
    select.replaceChildren(...state.models.map((m) => el("option", { value: m.name, text: m.name })));
    const wanted = new URLSearchParams(location.search).get("model");
    const known = (name) => state.models.some((m) => m.name === name);
    if (chosen && known(chosen.name)) select.value = chosen.name;
    else if (wanted && known(wanted)) select.value = wanted;
    else if (known("mnist")) select.value = "mnist";
    await selectModel(select.value, chosen && chosen.name === select.value ? chosen.version : "");
  }

  function versionTags(model, v) {
    const tags = Object.entries(model.labels || {})
      .filter(([, target]) => String(target) === String(v.version))
      .map(([label]) => label);
    if (v.recipe) tags.unshift(typeof v.recipe === "string" ? v.recipe : v.recipe.name || "");
    if (v.state !== "available") tags.push(v.state);
    return tags.filter(Boolean).join(", ");
  }

  // version: the one to keep chosen (the models read again) while it is listed and available.
  async function selectModel(name, version = "") {
    state.model = state.models.find((m) => m.name === name) || null;
    if (!state.model) return;
    const versions = $("version");
    const def = state.model.default_version;
    const options = [el("option", { value: "", text: `default (v${def ?? "none"})` })];
    for (const v of state.model.versions || []) {
      const tags = versionTags(state.model, v);
      const option = el("option", { value: String(v.version), text: `v${v.version}${tags ? ` · ${tags}` : ""}` });
      if (v.state !== "available") option.disabled = true;
      options.push(option);
    }
    versions.replaceChildren(...options);
    versions.value = options.some((o) => o.value === version && !o.disabled) ? version : "";
    state.version = versions.value;
    await selectVersion();
  }

  // The metadata of the model and version chosen; retry: read again for a prediction asked for
  // without it (retryMeta).
  function selectVersion(retry = false) {
    const read = readMeta(retry).finally(() => {
      if (state.metaRead !== read) return; // a model or version chosen since reads its own
      state.metaRead = null;
      markLoading(false);
      markBusy();
    });
    state.metaRead = read;
    markBusy();
    return read;
  }

  async function readMeta(retry) {
    state.version = $("version").value;
    dropAnswersInFlight();
    // A read again for a prediction keeps the error of the read before on screen until it is
    // answered: cleared and set again, the same error was announced at every stroke.
    if (!retry) showError("");
    state.meta = null;
    delete document.body.dataset.meta; // the model whose metadata the page holds (tests wait on it)
    const ask = ++state.metaAsk;
    if (state.model.default_version == null && !state.version) {
      $("image-panel").hidden = true;
      $("pima-panel").hidden = true;
      $("model-desc").textContent = "";
      showError(`${state.model.name} has no available version.`);
      return;
    }
    // Until the metadata is in, the panel on screen is the one chosen before: what is drawn or
    // typed on it stays, its answer goes. Just chosen, the model may be of another kind (a form in
    // place of the pad): the panels show as loading and take no input. A read for a prediction
    // leaves them be, the user is drawing or typing there.
    if (!$("image-panel").hidden) resetImageResult();
    if (!$("pima-panel").hidden) clearPimaResult();
    // The description (a live region) says Loading for a model or version chosen, not for each
    // stroke's read again while the server is down.
    if (!retry) {
      $("model-desc").textContent = `Loading ${state.model.name} v${state.version || state.model.default_version}…`;
      markLoading(true);
    }
    let meta;
    try {
      const body = await api(modelPath());
      meta = body.metadata || null;
      if (!meta) throw new Error(`version ${body.version} is ${body.state}${body.reason ? `: ${body.reason}` : ""}`);
    } catch (err) {
      if (ask !== state.metaAsk) return;
      // The panel and what is on it are back in use: the next prediction reads the metadata again.
      showError(`Cannot read the model's metadata: ${err.message.replace(/\.$/, "")}. The next prediction tries again.`);
      $("model-desc").textContent = "";
      if (!$("card").hidden) renderCard();
      return;
    }
    if (ask !== state.metaAsk) return;
    showError("");
    state.meta = meta;
    document.body.dataset.meta = state.model.name;
    $("model-desc").textContent = state.meta.description || "";
    const tabular = isPima();
    $("image-panel").hidden = tabular;
    $("pima-panel").hidden = !tabular;
    $("several-field").hidden = tabular || framing() !== "digit";
    if (!$("card").hidden) renderCard();
    // The input on screen is answered again by the version now chosen.
    if (tabular) {
      buildPimaForm();
      predictPima(false);
    } else {
      resetImageResult();
      if (state.drawn) schedulePredict(true);
      else if (state.upload) useFile(state.upload);
    }
  }

  // A prediction asked for while the metadata is missing reads it first (or waits for the read
  // under way); once it is read, readMeta answers the input on screen.
  // The page is busy while it reads, and no longer once the read has failed (or answered).
  function retryMeta() {
    if (state.model && !state.metaRead) selectVersion(true);
    markBusy();
  }

  // The panels and the model card while the metadata of the model or version just chosen is read:
  // dimmed, out of use (inert: no focus, no pointer, no drop or paste) and busy for screen readers.
  // What had the focus in a panel made inert (a Tab out of the API key field lands on the pad or a
  // Pima field as the models are read again) has it back once the panel is in use again, unless
  // the user has put it elsewhere meanwhile; a Pima field built again is found by its id.
  function markLoading(loading) {
    const panels = [$("image-panel"), $("pima-panel"), $("card-panel")];
    const focused = document.activeElement;
    if (loading && !state.focusBack && panels.some((panel) => panel.contains(focused))) state.focusBack = focused;
    for (const panel of panels) {
      panel.inert = loading;
      if (loading) panel.setAttribute("aria-busy", "true");
      else panel.removeAttribute("aria-busy");
    }
    const back = state.focusBack;
    if (loading || !back) return;
    state.focusBack = null;
    if (document.activeElement && document.activeElement !== document.body) return;
    (back.isConnected ? back : back.id && $(back.id))?.focus();
  }

  function isPima() {
    const meta = state.meta;
    return Boolean(meta && meta.input && Array.isArray(meta.input.features) && meta.input.features.length);
  }

  // ---------------------------------------------------------------- drawing pad
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  const boxes = $("boxes").getContext("2d");
  const clearBoxes = () => boxes.clearRect(0, 0, pad.width, pad.height);

  function clearPad() {
    ctx.fillStyle = state.lightInk ? "#000" : "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    clearBoxes();
    state.drawn = false;
    state.upload = null;
  }

  function padPoint(event) {
    const rect = pad.getBoundingClientRect();
    return [((event.clientX - rect.left) * pad.width) / rect.width, ((event.clientY - rect.top) * pad.height) / rect.height];
  }

  let drawing = false;
  let last = null;
  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    drawing = true;
    last = padPoint(event);
    stroke(last, last);
  });
  pad.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const point = padPoint(event);
    stroke(last, point);
    last = point;
    schedulePredict(false);
  });
  const endStroke = () => {
    if (!drawing) return;
    drawing = false;
    schedulePredict(true);
  };
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  pad.addEventListener("keydown", (event) => {
    if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      clearAll();
    }
  });

  function stroke(from, to) {
    ctx.strokeStyle = state.lightInk ? "#fff" : "#111";
    ctx.lineWidth = PEN_WIDTH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
    clearBoxes(); // the picture changed: the boxes of the number read before no longer fit it
    state.drawn = true;
    state.upload = null; // what is sent now is the pad, the upload with the strokes on it
  }

  function clearAll() {
    clearPad();
    resetImageResult();
    dropAnswersInFlight();
  }

  // An answer still on its way (a prediction or an explanation, of a picture or of Pima values) is
  // for an input no longer on screen, or for another model or version: it is not shown, and asks
  // for nothing more (a Pima answer would ask the model now chosen to explain its values).
  function dropAnswersInFlight() {
    state.shown = ++state.seq;
    state.explainSeq++;
    state.pimaAsk++;
    state.pimaSeq++;
  }

  // data-busy on <body> is "yes" while a prediction of a picture is queued, being prepared,
  // waiting (for the metadata too) or in flight, until the last of them is answered (tests use it).
  function markBusy() {
    const busy =
      state.inFlight > 0 || state.preparing > 0 || state.pending || state.timer !== null || state.metaRead !== null;
    document.body.dataset.busy = busy ? "yes" : "no";
  }

  // Throttle: at most one request in flight, one every THROTTLE_MS while drawing, and always one
  // after the stroke ends so the final drawing is what the result shows.
  function schedulePredict(final) {
    if (!state.drawn) return;
    const now = performance.now();
    if (state.inFlight) {
      state.pending = true;
      markBusy();
      return;
    }
    if (!final && now - state.lastSent < THROTTLE_MS) {
      if (!state.timer) {
        state.timer = setTimeout(() => {
          state.timer = null;
          schedulePredict(false);
          markBusy();
        }, THROTTLE_MS);
      }
      markBusy();
      return;
    }
    state.lastSent = now;
    state.preparing++; // toBlob answers later: busy until the request is on its way
    markBusy();
    pad.toBlob((blob) => {
      if (blob) predictImage(blob, "image/png");
      state.preparing--;
      markBusy();
    }, "image/png");
  }

  async function predictImage(blob, type) {
    if (!state.meta) return retryMeta();
    if (isPima()) return;
    const seq = ++state.seq;
    state.inFlight++;
    markBusy();
    try {
      // Versions with prediction sets also say when the model abstains.
      const abstain = hasSets() ? "&abstain=true" : "";
      const result = await api(`${predictPath()}?include_input=true&top_k=3${abstain}`, {
        method: "POST",
        body: blob,
        headers: { "Content-Type": type },
      });
      if (seq >= state.shown) {
        state.shown = seq;
        showError("");
        renderImageResult(result);
        const prediction = (result.predictions || [])[0];
        // only once the drawing settles: no newer prediction queued or throttled
        if (prediction && prediction.input && !state.pending && state.timer === null) explainImage(prediction);
      }
    } catch (err) {
      showFailure(err, seq);
    } finally {
      answered();
    }
  }

  // A request for a picture is answered (or failed): the drawing queued meanwhile is sent once
  // none is in flight.
  function answered() {
    state.inFlight--;
    if (state.pending && !state.inFlight) {
      state.pending = false;
      schedulePredict(true);
    }
    markBusy();
  }

  // A 422 for a blank page or faint ink: not a failure, the picture holds nothing to read.
  // A picture with nothing to read is an answer of its own (unless a newer one is shown);
  // anything else is an error, and the answer to an earlier picture goes with it: the pad now
  // shows a picture that answer was not computed for.
  function showFailure(err, seq) {
    if (seq < state.shown) return; // for a picture no longer on the pad, or another version
    if (isNothingFound(err)) {
      state.shown = seq;
      showError("");
      renderNothingFound(err.message);
      return;
    }
    showError(`Prediction failed: ${inPageTerms(err)}`);
    state.shown = seq;
    renderNoAnswer();
  }

  function renderNoAnswer() {
    resetImageResult();
    const verdict = $("verdict");
    verdict.replaceChildren(el("span", { class: "muted", id: "no-answer", text: "No prediction for this picture." }));
    verdict.dataset.updates = String(Number(verdict.dataset.updates) + 1);
    verdict.dataset.label = "";
  }

  // The server's advice for a number sent as one digit names its query string (?digits=many):
  // on the page, that is the "several digits" checkbox, which reads uploads only.
  const READ_A_NUMBER = /to read a number, send it with \?digits=many; to read one digit, crop the picture to it/;
  function inPageTerms(err) {
    if (err.status === 413) return tooLarge(err.message);
    if (err.status !== 422 || !READ_A_NUMBER.test(err.message)) return err.message;
    const advice = state.upload
      ? "to read it as a number, tick “Uploads hold several digits”; to read one digit, crop the picture to it"
      : "draw one digit at a time, or upload a picture of the number with “Uploads hold several digits” ticked";
    return err.message.replace(READ_A_NUMBER, advice);
  }

  // The server's 413 says the body's size and its limit in MiB; for an upload, the body is the file.
  function tooLarge(message) {
    return state.upload ? message.replace(/^the request body/, `the file ${state.upload.name}`) : message;
  }

  function isNothingFound(err) {
    return err.status === 422 && /^no (digit|item) found/.test(err.message);
  }

  function renderNothingFound(message) {
    const what = framing() === "item" ? "item of clothing" : "digit";
    resetImageResult();
    const verdict = $("verdict");
    verdict.replaceChildren(
      el("strong", { class: "nothing", id: "nothing-found", text: `No ${what} found.` }),
      el("span", { class: "muted", text: ` Draw one, or upload a photo where it stands out from the paper. (${message})` }),
    );
    verdict.dataset.updates = String(Number(verdict.dataset.updates) + 1);
    verdict.dataset.label = "";
  }

  function framing() {
    const input = (state.meta && state.meta.input) || {};
    if (input.framing) return input.framing;
    return state.model && state.model.name === "fashion_mnist" ? "item" : "digit";
  }

  // What the model reads, for "this does not look like ..." when its OOD model flags the input.
  function looksLike() {
    return framing() === "item" ? "clothing" : "a digit";
  }

  function oodNote(prediction) {
    if (prediction.out_of_distribution !== true) return null;
    return el("strong", { class: "ood", id: "ood-note", "data-score": String(prediction.ood_score),
      text: `This does not look like ${looksLike()}: the answer below is a guess.` });
  }

  // ---------------------------------------------------------------- several digits (uploads)
  async function predictNumber(blob, type, placed) {
    if (!state.meta) return retryMeta();
    const seq = ++state.seq;
    state.inFlight++;
    markBusy();
    try {
      const result = await api(`${predictPath()}?digits=many&include_input=true`, { method: "POST", body: blob, headers: { "Content-Type": type } });
      if (seq < state.shown) return;
      state.shown = seq;
      showError("");
      renderNumber(result, placed);
    } catch (err) {
      showFailure(err, seq);
    } finally {
      answered();
    }
  }

  function renderNumber(result, placed) {
    resetImageResult();
    const digits = result.digits || [];
    const verdict = $("verdict");
    const odd = digits.filter((d) => d.out_of_distribution === true).length;
    // the answer's own flag: half of the digits flagged, two at least (a word sent as a number)
    const unlike = result.out_of_distribution === true ? "This does not look like a number: " : "";
    verdict.replaceChildren(
      el("span", { class: "big", id: "predicted-number", text: result.number }),
      el("span", { class: "muted", text: ` ${digits.length} digit${digits.length === 1 ? "" : "s"} · ${result.model} v${result.version}` }),
      ...(odd ? [el("strong", { class: "ood", id: "ood-note", text: `${unlike}${odd} of them do${odd === 1 ? "es" : ""} not look like ${looksLike()}.` })] : []),
    );
    verdict.dataset.updates = String(Number(verdict.dataset.updates) + 1);
    verdict.dataset.label = result.number;
    const rows = digits.map((d, i) => {
      const p = (d.probabilities || {})[d.label] ?? 0;
      const bar = el("span", { class: "bar" });
      bar.style.width = `${Math.max(100 * p, 0.5).toFixed(1)}%`;
      return el("tr", { class: d.out_of_distribution ? "odd" : "" },
        el("th", { scope: "row", text: `#${i + 1}: ${d.label}` }),
        el("td", {}, el("span", { class: "track" }, bar), el("span", { class: "pct", text: `${(100 * p).toFixed(1)}%` })));
    });
    $("bars").tBodies[0].replaceChildren(...rows);
    showDigitInputs(digits);
    if (!placed) return;
    boxes.strokeStyle = "#e33";
    boxes.lineWidth = 2;
    for (const d of digits) {
      const [x, y, w, h] = d.box;
      boxes.strokeRect(placed.x + x * placed.scale, placed.y + y * placed.scale, w * placed.scale, h * placed.scale);
    }
  }

  // A number has no one 28x28 input: each digit has its own, shown side by side. Explanations
  // are asked for one input and one label, so "Why" stays for single digits.
  function showDigitInputs(digits) {
    const canvases = digits.map((d, i) => {
      if (!d.input) return null;
      const canvas = el("canvas", { width: "28", height: "28", role: "img",
        "aria-label": `Digit ${i + 1}, read as ${d.label}: its 28 by 28 input` });
      paintInput(canvas, d.input);
      return canvas;
    }).filter(Boolean);
    $("digit-inputs").replaceChildren(...canvases);
    $("digit-inputs").hidden = false;
    $("seen-stack").hidden = true;
    $("seen-caption").textContent = "Each digit's 28×28 input, as the model saw it";
    $("explain-toggle").hidden = true;
    $("explain-note").textContent = "“Why” explains one digit at a time: upload or draw a single digit to see it.";
  }

  // ---------------------------------------------------------------- upload and drop
  async function useFile(file) {
    if (!file) return;
    // Which image formats are read is the server's to say (its 415 names them): the page
    // keeps no list of its own.
    if (file.type && !file.type.startsWith("image/")) {
      showError(`${file.name}: not an image file.`);
      return;
    }
    // Show the upload on the pad too, scaled to fit, so the user sees what was sent; the page is
    // busy from now, not only once the request is on its way (another version's metadata just read
    // sends the upload again: busy throughout).
    state.preparing++;
    markBusy();
    let placed = null;
    try {
      const bitmap = await createImageBitmap(file);
      clearPad();
      const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
      const w = bitmap.width * scale;
      const h = bitmap.height * scale;
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
      placed = { x: (pad.width - w) / 2, y: (pad.height - h) / 2, scale };
    } catch {
      /* the server will say what is wrong with the file */
    }
    state.drawn = false; // the file itself is sent, not a redraw of the pad
    state.upload = file;
    const type = file.type || "application/octet-stream"; // the server reads the bytes' format
    const sent = $("several").checked && framing() === "digit" ? predictNumber(file, type, placed) : predictImage(file, type);
    state.preparing--; // the request is in flight now (or waits for the metadata)
    markBusy();
    await sent;
  }

  // The picture on the pad is read again, as a number or as one digit, when the box changes.
  $("several").addEventListener("change", () => {
    if (state.upload) useFile(state.upload);
  });
  $("file").addEventListener("change", (event) => {
    useFile(event.target.files[0]);
    event.target.value = "";
  });
  // A file dropped anywhere on the image panel is read, not only on the pad; a file dropped
  // elsewhere on the page is ignored, where the browser would open it in place of the page.
  const drop = $("drop");
  const takesPictures = () => !$("image-panel").hidden && !$("image-panel").inert;
  const dropsHere = (event) => takesPictures() && $("image-panel").contains(event.target);
  const carriesFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = dropsHere(event) ? "copy" : "none";
    drop.classList.toggle("over", dropsHere(event));
  });
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) drop.classList.remove("over"); // left the window
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    drop.classList.remove("over");
    if (dropsHere(event)) useFile(event.dataTransfer.files[0]);
  });
  // A picture pasted anywhere on the page (Ctrl+V or Cmd+V: a screenshot, a photo copied from
  // another app) is read as a dropped one is. Text is left to the browser, and so is a paste into
  // a field (the API key, the Pima values), whatever the clipboard holds.
  const TYPED_IN = "input:not([type=checkbox], [type=radio], [type=file]), textarea, [contenteditable]";
  document.addEventListener("paste", (event) => {
    const file = event.clipboardData && event.clipboardData.files[0];
    if (!file || !takesPictures() || (event.target instanceof Element && event.target.closest(TYPED_IN))) return;
    event.preventDefault();
    useFile(file);
  });

  // ---------------------------------------------------------------- image results
  function resetImageResult() {
    const verdict = $("verdict");
    verdict.replaceChildren(el("span", { class: "muted", text: "Draw something to get a prediction." }));
    $("bars").tBodies[0].replaceChildren();
    const seen = $("seen").getContext("2d");
    seen.fillStyle = "#000";
    seen.fillRect(0, 0, 28, 28);
    showOneInput();
    clearBoxes();
    clearHeat();
  }

  // One digit's answer: its 28x28 input and "Why" again, in place of a number's digit inputs.
  function showOneInput() {
    if (!$("digit-inputs").hidden) $("explain-note").replaceChildren(); // the number's note
    $("seen-stack").hidden = false;
    $("digit-inputs").hidden = true;
    $("digit-inputs").replaceChildren();
    $("seen-caption").textContent = "28×28 input, as the model saw it";
    $("explain-toggle").hidden = false;
  }

  // ---------------------------------------------------------------- explanations (images)
  function clearHeat() {
    state.explainSeq++; // an answer still in flight is for a picture that is gone
    $("heat").getContext("2d").clearRect(0, 0, 28, 28);
    $("explain-note").replaceChildren();
  }

  async function explainImage(prediction) {
    if (!state.explain || isPima()) return;
    const seq = ++state.explainSeq;
    try {
      const body = { instances: [prediction.input], target: prediction.class_index };
      const result = await api(predictPath("explain"), {
        method: "POST",
        body: JSON.stringify(body),
        headers: { "Content-Type": "application/json" },
      });
      if (seq !== state.explainSeq) return;
      drawHeat(result.explanations[0].attributions);
      const note = $("explain-note");
      note.replaceChildren(
        el("span", { class: "up", text: "Red" }), ` ink speaks for “${result.explanations[0].label}”, `,
        el("span", { class: "down", text: "blue" }), ` against (occlusion, ${result.patch}×${result.patch} patches).`,
      );
      note.dataset.updates = String(Number(note.dataset.updates) + 1);
      note.dataset.label = result.explanations[0].label;
    } catch (err) {
      if (seq === state.explainSeq) $("explain-note").textContent = `No explanation: ${err.message}`;
    }
  }

  // Semi-transparent red where removing the ink lowers the class's probability, blue where it
  // raises it; opacity by size (square root), relative to the largest value in the map.
  function drawHeat(map) {
    const flat = map.flat ? map.flat(2) : map;
    const max = Math.max(1e-9, ...flat.map(Math.abs));
    const image = new ImageData(28, 28);
    flat.forEach((value, i) => {
      const alpha = Math.round(230 * Math.sqrt(Math.min(1, Math.abs(value) / max))); // sqrt: faint values stay visible
      image.data.set(value >= 0 ? [230, 30, 30, alpha] : [40, 110, 255, alpha], i * 4);
    });
    $("heat").getContext("2d").putImageData(image, 0, 0);
  }

  function hasSets() {
    return Boolean(state.meta && state.meta.conformal);
  }

  const ABSTAIN_WHY = {
    out_of_distribution: "the input is unlike the training data",
    several_labels: "more than one label is plausible",
    no_label: "no label is likely enough",
  };

  // The prediction set at the answer's coverage, and whether the model abstains (and why).
  function trustLine(result, prediction) {
    if (!Array.isArray(prediction.prediction_set)) return null;
    const coverage = `${Math.round(100 * (1 - result.alpha))}%`;
    const set = prediction.prediction_set.length ? `{${prediction.prediction_set.join(", ")}}` : "{} (empty)";
    const parts = [el("span", { id: "prediction-set", "data-size": String(prediction.prediction_set.length), text: `Prediction set (${coverage}): ${set}` })];
    if (prediction.abstained) {
      parts.push(el("strong", { class: "abstains", id: "abstained", "data-reason": prediction.abstain_reason,
        text: ` · Abstains: ${ABSTAIN_WHY[prediction.abstain_reason] || prediction.abstain_reason}` }));
    } else if (prediction.abstained === false) {
      parts.push(el("span", { id: "abstained", "data-reason": "", text: " · Answers" }));
    }
    return el("span", { class: "trust", id: "trust" }, ...parts);
  }

  function renderImageResult(result) {
    const prediction = (result.predictions || [])[0];
    if (!prediction) return;
    showOneInput(); // a stroke drawn on a number's upload is read as one digit
    const probs = prediction.probabilities || {};
    const best = prediction.label;
    const p = probs[best];
    const verdict = $("verdict");
    const trust = trustLine(result, prediction);
    const ood = oodNote(prediction);
    verdict.replaceChildren(
      ...(ood ? [ood] : []),
      el("span", { class: prediction.abstained ? "big abstained" : "big", id: "predicted-label", text: best }),
      el("span", { class: "muted", text: ` ${(100 * (p ?? 0)).toFixed(1)}% · ${result.model} v${result.version}` }),
      ...(trust ? [trust] : []),
    );
    verdict.dataset.updates = String(Number(verdict.dataset.updates) + 1);
    verdict.dataset.label = best;

    const rows = Object.entries(probs).map(([label, value]) => {
      const pct = 100 * value;
      const bar = el("span", { class: "bar" });
      bar.style.width = `${Math.max(pct, 0.5).toFixed(1)}%`;
      const row = el(
        "tr",
        label === best ? { class: "best" } : {},
        el("th", { scope: "row", text: label }),
        el("td", {}, el("span", { class: "track" }, bar), el("span", { class: "pct", text: `${pct.toFixed(1)}%` })),
      );
      return row;
    });
    $("bars").tBodies[0].replaceChildren(...rows);
    if (prediction.input) paintInput($("seen"), prediction.input);
  }

  function paintInput(canvas, input) {
    const seen = canvas.getContext("2d");
    const flat = input.flat ? input.flat(2) : input;
    const max = Math.max(...flat);
    const scale = max > 1.0001 ? 1 : 255;
    const image = seen.createImageData(28, 28);
    flat.forEach((value, i) => {
      const g = Math.max(0, Math.min(255, Math.round(value * scale)));
      image.data.set([g, g, g, 255], i * 4);
    });
    seen.putImageData(image, 0, 0);
  }

  $("clear").addEventListener("click", clearAll);
  $("explain-toggle").addEventListener("click", () => {
    state.explain = !state.explain;
    const button = $("explain-toggle");
    button.setAttribute("aria-pressed", String(state.explain));
    button.textContent = state.explain ? "Why: on" : "Why: off";
    $("heat").hidden = !state.explain;
    if (!state.explain) clearHeat();
    else if (state.drawn) schedulePredict(true);
  });
  $("ink").addEventListener("click", () => {
    state.lightInk = !state.lightInk;
    const button = $("ink");
    button.setAttribute("aria-pressed", String(!state.lightInk));
    button.textContent = state.lightInk ? "Ink: white on black" : "Ink: dark on light";
    clearAll();
  });

  // ---------------------------------------------------------------- Pima form
  const PIMA_EXAMPLE = { pregnant: 6, glucose: 148, pressure: 72, triceps: 35, insulin: 0, mass: 33.6, pedigree: 0.627, age: 50 };
  let pimaTimer = null;

  function buildPimaForm() {
    const fields = state.meta.input.features;
    const box = $("pima-fields");
    const old = Object.fromEntries([...box.querySelectorAll("input")].map((i) => [i.name, i.value]));
    // The form is built again when the metadata is read again (retryMeta) while a field is being
    // typed in: that field keeps the focus, and the keys typed next land in it.
    const focused = box.contains(document.activeElement) ? document.activeElement.name : null;
    box.replaceChildren(
      ...fields.map((f) => {
        const id = `f-${f.name}`;
        const typical = Array.isArray(f.typical) ? `typical ${f.typical[0]}–${f.typical[1]}` : "";
        // a CSV from another copy of the data set names the column so; the server takes it
        const aliases = Array.isArray(f.aliases) && f.aliases.length ? `; also called ${f.aliases.join(", ")}` : "";
        const range = `${typical}; allowed ${f.min}–${f.max}${aliases}`;
        const hint = el("span", { class: "hint", id: `${id}-hint`, text: f.description ? `${f.description}. ${range[0].toUpperCase()}${range.slice(1)}` : range });
        const input = el("input", {
          id,
          name: f.name,
          type: "number",
          inputmode: "decimal",
          min: String(f.min),
          max: String(f.max),
          step: "any",
          required: "",
          "aria-describedby": `${id}-hint ${id}-msg`,
        });
        if (old[f.name] !== undefined) input.value = old[f.name];
        input.addEventListener("input", () => {
          // The answer on screen is for other values: it goes as soon as this one is wrong.
          if (!validateField(input, f)) clearPimaResult();
          clearTimeout(pimaTimer);
          pimaTimer = setTimeout(() => predictPima(false), 300);
        });
        const title = f.description ? `${f.name}: ${f.description}` : f.name;
        return el(
          "div",
          { class: "field" },
          el("label", { for: id, title }, el("span", { text: f.name }), " ", el("span", { class: "unit", text: f.unit || "" })),
          input,
          hint,
          el("span", { class: "msg", id: `${id}-msg`, "aria-live": "polite" }),
        );
      }),
    );
    if (focused) $(`f-${focused}`)?.focus();
    // A hint only, rounded for reading: left empty, no threshold is sent and the server applies
    // the model's exact one.
    const thr = $("threshold");
    const model = state.meta.threshold;
    thr.placeholder = model != null ? String(Number(model.toPrecision(3))) : "0.5";
  }

  function validateField(input, f) {
    let message = "";
    const text = input.value.trim();
    if (text === "") message = input.validity.badInput ? "Not a number." : "Required.";
    else {
      const value = Number(text);
      if (!Number.isFinite(value)) message = "Not a number.";
      else if (value < f.min || value > f.max) message = `Must be between ${f.min} and ${f.max}.`;
    }
    input.setAttribute("aria-invalid", message ? "true" : "false");
    document.getElementById(`${input.id}-msg`).textContent = message;
    return !message;
  }

  // Empty is valid: no threshold is sent and the server applies the model's own.
  function validateThreshold() {
    const input = $("threshold");
    const text = input.value.trim();
    let message = "";
    if (text === "" && input.validity.badInput) message = "Not a number.";
    else if (text !== "") {
      const value = Number(text);
      if (!Number.isFinite(value)) message = "Not a number.";
      else if (value < 0 || value > 1) message = "Must be between 0 and 1.";
    }
    input.setAttribute("aria-invalid", message ? "true" : "false");
    $("threshold-msg").textContent = message;
    return !message;
  }

  // The result area without an answer (none is on its way either): the form is incomplete or
  // wrong, or the request for its values failed (the error box says why).
  function clearPimaResult() {
    state.pimaAsk++;
    state.pimaSeq++;
    const inputs = [...$("pima-fields").querySelectorAll("input")];
    const wrong = [...inputs, $("threshold")].some((input) => input.getAttribute("aria-invalid") === "true");
    const empty = inputs.some((input) => input.value.trim() === "");
    const box = $("pima-result");
    const text = wrong ? "Correct the marked fields to get a prediction."
      : empty ? "Fill in the eight fields to get a prediction." : "No prediction for these values.";
    box.replaceChildren(el("p", { class: "muted", id: "pima-waiting", text }));
    box.dataset.state = wrong ? "invalid" : empty ? "empty" : "failed";
    $("pima-explain").replaceChildren();
  }

  async function predictPima(explicit) {
    if (!state.meta) return retryMeta();
    if (!isPima()) return;
    const fields = state.meta.input.features;
    const inputs = fields.map((f) => $(`f-${f.name}`));
    const valid = inputs.map((input, i) => (explicit || input.value.trim() !== "" ? validateField(input, fields[i]) : false));
    const thresholdValid = validateThreshold();
    if (!valid.every(Boolean) || !thresholdValid) {
      clearPimaResult();
      if (explicit) (valid.includes(false) ? inputs[valid.indexOf(false)] : $("threshold")).focus();
      return;
    }
    const record = Object.fromEntries(fields.map((f, i) => [f.name, Number(inputs[i].value)]));
    const payload = { instances: [record] };
    if (hasSets()) payload.abstain = true;
    const thr = $("threshold").value.trim();
    if (thr !== "") payload.threshold = Number(thr);
    const ask = ++state.pimaAsk;
    try {
      const result = await api(predictPath(), {
        method: "POST",
        body: JSON.stringify(payload),
        headers: { "Content-Type": "application/json" },
      });
      if (ask !== state.pimaAsk) return;
      showError("");
      renderPima(result);
      explainPima(record);
    } catch (err) {
      if (ask !== state.pimaAsk) return;
      clearPimaResult();
      showError(`Prediction failed: ${err.message}`);
    }
  }

  // Per-feature bars: exact Shapley values in P(diabetes), right raises the risk, left lowers it.
  async function explainPima(record) {
    const seq = ++state.pimaSeq;
    const box = $("pima-explain");
    try {
      const result = await api(predictPath("explain"), {
        method: "POST",
        body: JSON.stringify({ instances: [record] }),
        headers: { "Content-Type": "application/json" },
      });
      if (seq !== state.pimaSeq) return;
      const item = result.explanations[0];
      const max = Math.max(1e-9, ...item.attributions.map((a) => Math.abs(a.probability)));
      const rows = item.attributions.map((a) => {
        const pts = 100 * a.probability;
        const bar = el("span", { class: `effect ${a.probability >= 0 ? "raises" : "lowers"}` });
        const half = (50 * Math.abs(a.probability)) / max;
        bar.style.width = `${half.toFixed(1)}%`;
        bar.style.left = a.probability >= 0 ? "50%" : `${(50 - half).toFixed(1)}%`;
        const word = a.effect === "raises" ? "raises" : a.effect === "lowers" ? "lowers" : "no effect";
        const amount = `${pts >= 0 ? "+" : "−"}${Math.abs(pts).toFixed(1)} pts`;
        return el(
          "tr",
          { "data-feature": a.feature, "data-effect": a.effect },
          el("th", { scope: "row", text: `${a.feature} ${fmt(a.value, 3)}${a.unit && a.unit !== "1" ? ` ${a.unit}` : ""}` }),
          el("td", { class: "chart" }, el("span", { class: "diverge", role: "img", "aria-label": `${word} the risk by ${Math.abs(pts).toFixed(1)} percentage points` }, bar)),
          el("td", { class: "amount", text: `${word === "no effect" ? "" : `${word} `}${amount}` }),
        );
      });
      const caption = `Why: each value's share of the move from ${(100 * item.base.probability).toFixed(1)}% ` +
        `(the average over the ${result.background}) to ${(100 * item.probability).toFixed(1)}%, ` +
        "in percentage points of P(diabetes) (exact Shapley values).";
      box.replaceChildren(el("table", { class: "effects", id: "pima-effects" }, el("caption", { text: caption }), el("tbody", {}, ...rows)));
      box.dataset.updates = String(Number(box.dataset.updates) + 1);
    } catch (err) {
      if (seq === state.pimaSeq) box.replaceChildren(el("p", { class: "muted", text: `No explanation: ${err.message}` }));
    }
  }

  function renderPima(result) {
    const p = result.predictions[0];
    const box = $("pima-result");
    const pct = 100 * p.probability;
    const bar = el("span", { class: `bar ${p.outcome_index ? "pos" : "neg"}` });
    bar.style.width = `${pct.toFixed(1)}%`;
    const mark = el("span", { class: "mark", title: "threshold" });
    mark.style.left = `${(100 * p.threshold).toFixed(1)}%`;
    box.replaceChildren(
      el("p", { class: `outcome ${p.outcome_index ? "pos" : "neg"}`, id: "pima-outcome", text: p.outcome }),
      el("p", {}, "P(diabetes) = ", el("strong", { id: "pima-probability", text: p.probability.toFixed(3) }),
        `, threshold ${Number(p.threshold.toFixed(4))} · ${result.model} v${result.version}`),
      el("span", { class: "track wide", role: "img", "aria-label": `Probability ${pct.toFixed(1)} percent` }, bar, mark),
    );
    const trust = trustLine(result, p);
    if (trust) box.append(el("p", {}, trust));
    box.dataset.state = "answer";
    box.dataset.updates = String(Number(box.dataset.updates) + 1);
  }

  $("pima-form").addEventListener("submit", (event) => {
    event.preventDefault();
    predictPima(true);
  });
  $("threshold").addEventListener("input", () => {
    if (!validateThreshold()) clearPimaResult();
    clearTimeout(pimaTimer);
    pimaTimer = setTimeout(() => predictPima(false), 300);
  });
  $("pima-example").addEventListener("click", () => {
    for (const [name, value] of Object.entries(PIMA_EXAMPLE)) {
      const input = $(`f-${name}`);
      if (input) input.value = String(value);
    }
    predictPima(true);
  });

  // ---------------------------------------------------------------- model card
  $("card-toggle").addEventListener("click", () => {
    const card = $("card");
    const open = card.hidden;
    card.hidden = !open;
    $("card-toggle").setAttribute("aria-expanded", String(open));
    $("card-toggle").textContent = open ? "Hide model card" : "Show model card";
    if (open) renderCard();
  });

  function fmt(x, digits = 4) {
    if (typeof x !== "number") return String(x);
    if (Number.isInteger(x)) return String(x);
    return Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(digits);
  }

  // A file system path on the server is not for web users. The training side labels the data's
  // source "<kind> <where>" ("cache /root/.cache/digitserve/mnist", "download <url>", "npm package
  // <name> <version>"): from the first word that starts a local path to the end, only the path's
  // last part is shown ("cache mnist").
  const HOST_PATH = /(^|\s)(?:file:\/\/)?(?:~?\/|[A-Za-z]:[\\/]|\\\\).*$/;
  const lastPart = (path) => path.trim().split(/[\\/]+/).filter(Boolean).pop() || "";
  function withoutHostPath(source) {
    if (typeof source !== "string") return "";
    return source.replace(HOST_PATH, (path, space) => space + lastPart(path)).trim();
  }

  // trim: plain numbers as written (hyper-parameters), else metrics with fixed decimals
  function kvTable(caption, entries, trim = false) {
    const show = (v) => (typeof v === "object" ? JSON.stringify(v) : trim && typeof v === "number" ? String(v) : fmt(v));
    const rows = entries.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }), el("td", { text: show(v) })));
    return el("table", { class: "kv" }, el("caption", { text: caption }), el("tbody", {}, ...rows));
  }

  function renderCard() {
    const card = $("card");
    const meta = state.meta;
    if (!meta) {
      card.replaceChildren(el("p", { class: "muted", text: "No metadata for this version." }));
      return;
    }
    const m = meta.metrics || {};
    const parts = [
      el("h3", { text: `${meta.name} version ${meta.version}` }),
      el("p", { class: "muted", text: `${meta.description || ""} · created ${meta.created_at || "?"}` }),
    ];
    const metricRows = [
      ["accuracy", m.accuracy],
      ["loss", m.loss],
      ["ROC-AUC", m.roc_auc],
      ["ECE (expected calibration error)", m.ece],
      ["threshold", meta.threshold],
    ];
    if (m.cv) {
      metricRows.push(["CV accuracy", `${fmt(m.cv.accuracy_mean, 3)} ± ${fmt(m.cv.accuracy_std, 3)}`]);
      metricRows.push(["CV ROC-AUC", `${fmt(m.cv.auc_mean, 3)} ± ${fmt(m.cv.auc_std, 3)}`]);
      metricRows.push(["CV folds × repeats", `${m.cv.folds} × ${m.cv.repeats}`]);
    }
    parts.push(kvTable("Test-set metrics", metricRows));
    const cal = meta.calibration;
    if (cal && cal.before && cal.after) {
      const params = Object.entries(cal.params || {}).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(", ");
      const split = cal.split || {};
      parts.push(kvTable("Calibration (test set)", [
        ["method", `${cal.method} (${params}), fitted on ${split.examples} held-out training examples`],
        ["ECE before → after", `${fmt(cal.before.ece, 4)} → ${fmt(cal.after.ece, 4)}`],
        ["Brier before → after", `${fmt(cal.before.brier, 4)} → ${fmt(cal.after.brier, 4)}`],
        ["accuracy before → after", `${fmt(cal.before.accuracy, 4)} → ${fmt(cal.after.accuracy, 4)}`],
      ]));
    }
    const conf = meta.conformal;
    if (conf && Array.isArray(conf.test)) {
      parts.push(kvTable(`Prediction sets (split conformal, ${conf.n} calibration examples)`, conf.test.map((t) => [
        `alpha ${t.alpha}${t.alpha === conf.alpha ? " (default)" : ""}`,
        `coverage ${fmt(t.coverage, 4)}, mean set size ${fmt(t.mean_set_size, 3)}`,
      ])));
    }

    if (m.per_class) {
      const rows = Object.entries(m.per_class).map(([label, v]) =>
        el("tr", {}, el("th", { scope: "row", text: label }), el("td", { text: fmt(v.precision, 3) }), el("td", { text: fmt(v.recall, 3) })));
      parts.push(el("table", { class: "grid" }, el("caption", { text: "Per-class precision and recall" }),
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "label" }), el("th", { scope: "col", text: "precision" }), el("th", { scope: "col", text: "recall" }))),
        el("tbody", {}, ...rows)));
    }
    if (Array.isArray(m.confusion_matrix)) parts.push(confusionTable(m.confusion_matrix, meta.labels || []));

    const recipe = meta.recipe || {};
    parts.push(kvTable("Recipe", [
      ["name", recipe.name],
      ["seed", recipe.seed],
      ...Object.entries(recipe.hyperparameters || {}),
      ["training seconds", meta.training && Math.round(meta.training.seconds * 10) / 10],
      ["epochs run", meta.training && meta.training.epochs_run],
    ], true));
    const data = meta.data || {};
    parts.push(kvTable(`Data (${withoutHostPath(data.source) || "source unknown"})`, Object.entries(data.sha256 || {})));
    if (meta.libraries) parts.push(kvTable("Libraries", Object.entries(meta.libraries)));

    const reportFiles = Object.keys(meta.files || {}).filter((f) => f.startsWith("report/"));
    const plots = reportFiles.filter((f) => f.endsWith(".png"));
    const figures = plots.map((f) => {
      const file = f.slice("report/".length);
      const img = el("img", { src: modelPath(`/report/${enc(file)}`), alt: `${file.replace(".png", "").replace("_", " ")} plot`, loading: "eager" });
      return el("figure", { class: "plot" }, img, el("figcaption", { text: file }));
    });
    if (figures.length) parts.push(el("h4", { text: "Training report" }), el("div", { class: "plots" }, ...figures));
    if (reportFiles.includes("report/report.md")) {
      parts.push(el("p", {}, el("a", { href: modelPath("/report/report.md"), text: "report.md" })));
    }
    const live = el("div", { id: "card-live", class: "live" });
    parts.splice(2, 0, live);
    card.replaceChildren(...parts);
    renderLive(live, meta);
  }

  // Live quality and input drift come from the server's operations routes; each section shows
  // only when the server computes it (feedback or drift turned on) and has something to show.
  async function renderLive(live, meta) {
    const base = `/models/${enc(meta.name)}/versions/${enc(meta.version)}`;
    const [quality, drift] = await Promise.all([
      api(`${base}/quality`).catch(() => null),
      api(`${base}/drift`).catch(() => null),
    ]);
    if (state.meta !== meta || !live.isConnected) return; // another version was chosen meanwhile
    const parts = [];
    const q = quality && quality.quality;
    if (q) {
      parts.push(kvTable(`Live quality (last ${q.rows} labelled predictions, window ${q.window})`, [
        ["accuracy", q.accuracy],
        ["Brier score", q.brier],
        ["ECE", q.ece],
        ["ROC-AUC", q.roc_auc],
      ]));
    }
    for (const [other, s] of Object.entries((quality && quality.shadow) || {})) {
      if (s.rows) parts.push(kvTable(`Shadow: version ${other} on the same requests`, [
        ["agreement", s.agreement],
        ["runs (dropped under load)", `${s.runs} (${s.dropped})`],
        ["mean latency ms", s.mean_latency_s == null ? null : s.mean_latency_s * 1000],
      ]));
    }
    const d = drift && drift.drift;
    if (d && d.rows) {
      const alarm = d.alarm;
      const verdict = alarm
        ? "Drift alarm: recent inputs no longer look like the training data."
        : "No drift: recent inputs look like the training data.";
      parts.push(el("p", { class: alarm ? "drift-alarm" : "drift-ok", id: "drift-verdict", text: verdict }));
      const rows = Object.entries(d.features).map(([name, f]) => el("tr", { class: f.alarm ? "alarm" : "" },
        el("th", { scope: "row", text: name }),
        el("td", { text: f.ks == null ? "–" : fmt(f.ks, 3) }),
        el("td", { text: f.psi == null ? "–" : fmt(f.psi, 3) }),
        el("td", { text: f.p_value == null ? "–" : f.p_value.toExponential(1) }),
        el("td", { text: f.alarm ? "alarm" : "ok" })));
      const caption = `Input drift (last ${d.rows} of ${d.inputs_total} inputs; alarm below p ${d.threshold.p_value_per_feature.toExponential(1)})`;
      parts.push(el("table", { class: "grid drift" }, el("caption", { text: caption }),
        el("thead", {}, el("tr", {}, ...["feature", "KS", "PSI", "p-value", ""].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, ...rows)));
    }
    live.replaceChildren(...parts);
    live.dataset.loaded = "yes";
  }

  function confusionTable(matrix, labels) {
    const max = Math.max(1, ...matrix.flat());
    const head = el("tr", {}, el("th", { scope: "col", text: "true ↓ / predicted →" }), ...matrix[0].map((_, j) => el("th", { scope: "col", text: labels[j] ?? String(j) })));
    const rows = matrix.map((row, i) => el("tr", {}, el("th", { scope: "row", text: labels[i] ?? String(i) }), ...row.map((count, j) => {
      const cell = el("td", { text: String(count) });
      const alpha = count / max;
      cell.style.background = i === j ? `rgba(0, 90, 180, ${0.1 + 0.6 * alpha})` : `rgba(200, 40, 40, ${Math.min(0.7, 4 * alpha)})`;
      if (alpha > 0.45) cell.classList.add("dark");
      return cell;
    })));
    return el("div", { class: "scroll" }, el("table", { class: "confusion" }, el("caption", { text: "Confusion matrix (test set)" }), el("thead", {}, head), el("tbody", {}, ...rows)));
  }

  // ---------------------------------------------------------------- start
  $("model").addEventListener("change", (event) => selectModel(event.target.value));
  $("version").addEventListener("change", () => selectVersion());
  $("api-key").value = sessionStorage.getItem("serve-api-key") || "";
  $("api-key").addEventListener("change", () => {
    sessionStorage.setItem("serve-api-key", $("api-key").value.trim());
    loadModels().catch((err) => showError(err.message));
  });

  clearPad();
  resetImageResult();
  loadStatus();
  loadModels()
    .then(() => document.body.setAttribute("data-loaded", "yes"))
    .catch((err) => showError(`Cannot list the models: ${err.message}`));
})();
