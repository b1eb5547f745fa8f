// The chat page: the conversation lives here; each answer streams from
// /v1/chat/completions (stream: true) through fetch + ReadableStream. Answers are rendered
// as Markdown by markdown.js (vendored marked + DOMPurify); everything else is set as text.
"use strict";

const $ = (id) => document.getElementById(id);
const log = $("log"), form = $("form"), input = $("input"), sendBtn = $("send"), stopBtn = $("stop");
const statusLine = $("status");
const history = [];          // {role, content[, tool_calls]} of finished turns
let modelName = null;
let controller = null;        // AbortController of the answer being streamed
const attached = [];          // {name, url} of images to send with the next message

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function bubble(role, text, images) {
  const empty = log.querySelector(".empty");
  if (empty) empty.remove();
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.dataset.role = role;
  div.textContent = text;
  for (const im of images || []) div.appendChild(thumb(im));
  log.appendChild(div);
  log.scrollTop = log.scrollHeight;
  return div;
}

function thumb(im) {
  const img = document.createElement("img");
  img.className = "thumb";
  img.alt = im.name;
  img.title = im.name;
  img.src = im.url;  // a data: URL read from the user's own file
  return img;
}

function showAttached() {
  const box = $("attached");
  box.replaceChildren();
  attached.forEach((im, i) => {
    const item = document.createElement("span");
    item.className = "attached-item";
    item.appendChild(thumb(im));
    const x = document.createElement("button");
    x.type = "button";
    x.className = "unattach";
    x.textContent = "×";
    x.title = "Remove " + im.name;
    x.addEventListener("click", () => { attached.splice(i, 1); showAttached(); });
    item.appendChild(x);
    box.appendChild(item);
  });
  box.hidden = attached.length === 0;
}

function attachFiles(files) {
  for (const f of files) {
    if (!f.type.startsWith("image/")) { statusLine.textContent = f.name + " is not an image"; continue; }
    const reader = new FileReader();
    reader.onload = () => { attached.push({ name: f.name || "pasted image", url: reader.result }); showAttached(); };
    reader.readAsDataURL(f);
  }
}

function note(div, text) {
  const span = document.createElement("span");
  span.className = "note";
  span.textContent = text;
  div.appendChild(span);
}

// A tool call, readably: the function's name and its arguments as indented JSON.
function showCall(div, call) {
  if (!call.el) {
    call.el = document.createElement("div");
    call.el.className = "call";
    const fn = document.createElement("span");
    fn.className = "fn";
    call.el.appendChild(fn);
    call.el.appendChild(document.createElement("pre"));
    div.appendChild(call.el);
  }
  call.el.firstChild.textContent = call.name;
  call.el.lastChild.textContent = pretty(call.arguments);
}

// JSON text indented when it parses (an object or a list), else as it is.
function pretty(text) {
  try {
    const value = JSON.parse(text);
    if (value !== null && typeof value === "object") return JSON.stringify(value, null, 2);
  } catch (e) { /* not (yet) JSON */ }
  return text;
}

function readTools() {
  const text = $("tools").value.trim();
  if (!text) return null;
  let tools;
  try { tools = JSON.parse(text); } catch (e) { throw new Error("Tools: not JSON (" + e.message + ")"); }
  if (!Array.isArray(tools)) throw new Error("Tools: give a JSON list of tools");
  return tools;
}

function showEmpty() {
  log.innerHTML = '<p class="empty">Start the conversation below.</p>';
}

async function loadModel() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const body = await r.json();
    if (r.status === 401) {  // the server wants a key: open the settings at that field
      $("settings").hidden = false;
      $("settings-toggle").setAttribute("aria-expanded", "true");
      $("api-key").focus();
    }
    if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
    // the chat models (embedding, rerank and speech models do not chat)
    const chat = body.data.filter((m) => m.kind === "chat" || m.kind === "vision");
    const pick = $("model-pick");
    pick.replaceChildren();
    for (const m of chat) {
      const opt = document.createElement("option");
      opt.value = m.id;
      opt.textContent = m.id + (m.kind === "vision" ? " (images)" : "");
      pick.appendChild(opt);
    }
    if (!chat.some((m) => m.id === modelName)) modelName = chat.length ? chat[0].id : null;
    pick.value = modelName || "";
    pick.hidden = chat.length < 2;  // a picker only when there is a choice
    $("model").textContent = modelName || "";
    statusLine.textContent = "";
  } catch (e) {
    $("model").textContent = "";
    statusLine.textContent = e.message;
  }
}

function busy(on) {
  sendBtn.hidden = on;
  stopBtn.hidden = !on;
  input.disabled = false;
}

// Reads SSE "data: ..." events from the response body; calls onEvent(obj) for each.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
  }
}

let chatId = 0; // bumped by "New chat"

// A number field's value, or undefined when it is empty (the model's own default applies).
function numberField(id) {
  const v = $(id).value.trim();
  return v === "" ? undefined : Number(v);
}

async function send(text, images) {
  const myChat = chatId;
  const system = $("system").value.trim();
  // The images first, then the question (as ovchat's Python API places them).
  const content = images.length ? images.map((im) => (
    { type: "image_url", image_url: { url: im.url } })).concat([{ type: "text", text }]) : text;
  const userTurn = { role: "user", content };
  const messages = (system ? [{ role: "system", content: system }] : []).concat(history, [userTurn]);
  let tools;
  try { tools = readTools(); } catch (e) { bubble("error", "Error: " + e.message); return; }
  bubble("user", text, images);
  const div = bubble("assistant", "");
  div.classList.add("streaming");
  const body = {
    model: modelName || undefined,
    messages,
    stream: true,
    stream_options: { include_usage: true },
    temperature: numberField("temperature"),
    max_tokens: numberField("max-tokens"),
    top_p: numberField("top-p"),
  };
  if ($("format").value === "json_object") body.response_format = { type: "json_object" };
  if (tools) { body.tools = tools; body.tool_choice = $("tool-choice").value; }
  const text_el = document.createElement("div");
  text_el.className = "md";
  div.appendChild(text_el);
  let drawn = 0;  // Markdown is re-rendered at most once a frame while the answer streams
  const draw = () => { drawn = 0; renderMarkdown(text_el, answer); log.scrollTop = log.scrollHeight; };
  const calls = [];
  controller = new AbortController();
  busy(true);
  statusLine.textContent = "generating…";
  let answer = "", finish = null, usage = null;
  const started = performance.now();
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal,
    });
    if (!r.ok) {
      const err = await r.json().catch(() => ({}));
      throw new Error(err.error ? err.error.message : r.status + " " + r.statusText);
    }
    await readEvents(r, (ev) => {
      if (ev.error) throw new Error(ev.error.message);
      if (ev.usage) usage = ev.usage;
      for (const c of ev.choices || []) {
        if (c.delta && c.delta.content) {
          answer += c.delta.content;
          if (!drawn) drawn = requestAnimationFrame(draw);
        }
        for (const d of (c.delta && c.delta.tool_calls) || []) {
          const call = calls[d.index] || (calls[d.index] = { id: "", name: "", arguments: "" });
          if (d.id) call.id = d.id;
          if (d.function && d.function.name) call.name += d.function.name;
          if (d.function && d.function.arguments) call.arguments += d.function.arguments;
          showCall(div, call);
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
    });
    if (drawn) cancelAnimationFrame(drawn);
    draw();
    if (body.response_format && answer) {  // a JSON answer, indented once it is whole
      const pre = document.createElement("pre");
      pre.className = "json";
      pre.textContent = pretty(answer);
      text_el.replaceWith(pre);
    }
    const turn = { role: "assistant", content: answer };
    if (calls.length) turn.tool_calls = calls.map((c) => ({
      id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
    if (chatId === myChat) history.push(userTurn, turn);
    const secs = (performance.now() - started) / 1000;
    const tokens = usage ? usage.completion_tokens : "?";
    note(div, `${tokens} tokens in ${secs.toFixed(1)} s` + (finish === "length" ? " (cut at max tokens)" : ""));
    div.dataset.finish = finish || "";
    statusLine.textContent = "";
  } catch (e) {
    if (e.name === "AbortError") {
      // Keep what arrived as the assistant's (partial) turn, unless "New chat" started over.
      if (drawn) cancelAnimationFrame(drawn);
      draw();
      if (chatId === myChat) history.push(userTurn, { role: "assistant", content: answer });
      note(div, "stopped");
      div.dataset.finish = "stopped";
      statusLine.textContent = "";
    } else {
      div.remove();
      bubble("error", "Error: " + e.message);
      statusLine.textContent = "";
    }
  } finally {
    div.classList.remove("streaming");
    controller = null;
    busy(false);
    input.focus();
  }
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || controller) return;
  input.value = "";
  const images = attached.splice(0);
  showAttached();
  send(text, images);
});
$("attach").addEventListener("change", (e) => { attachFiles(e.target.files); e.target.value = ""; });
input.addEventListener("paste", (e) => {
  const files = [...(e.clipboardData ? e.clipboardData.files : [])].filter((f) => f.type.startsWith("image/"));
  if (files.length) { e.preventDefault(); attachFiles(files); }
});
$("model-pick").addEventListener("change", (e) => {
  modelName = e.target.value;
  $("model").textContent = modelName;
});
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    form.requestSubmit();
  }
});
stopBtn.addEventListener("click", () => { if (controller) controller.abort(); });
$("clear").addEventListener("click", () => {
  chatId += 1; // an answer still streaming belongs to the old chat
  if (controller) controller.abort();
  history.length = 0;
  attached.length = 0;
  showAttached();
  showEmpty();
});
$("settings-toggle").addEventListener("click", (e) => {
  const panel = $("settings");
  panel.hidden = !panel.hidden;
  e.currentTarget.setAttribute("aria-expanded", String(!panel.hidden));
});
$("api-key").addEventListener("change", loadModel);

showEmpty();
loadModel();
