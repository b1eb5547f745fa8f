// The chat page: the conversation lives here; each answer streams from
// /v1/chat/completions (stream: true) through fetch + ReadableStream. No libraries.
"use strict";

const $ = (id) => document.getElementById(id);
const log = $("log"), form = $("form"), input = $("input"), sendBtn = $("send"), stopBtn = $("stop");
const statusLine = $("status");
const history = [];          // {role, content[, tool_calls]} of finished turns
let modelName = null;
let controller = null;        // AbortController of the answer being streamed

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function bubble(role, text) {
  const empty = log.querySelector(".empty");
  if (empty) empty.remove();
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.dataset.role = role;
  div.textContent = text;
  log.appendChild(div);
  log.scrollTop = log.scrollHeight;
  return div;
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
    // the first chat model (rerankers, speech and embedding models do not chat)
    modelName = (body.data.find((m) => m.kind === "chat") || body.data[0]).id;
    $("model").textContent = modelName;
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

async function send(text) {
  const myChat = chatId;
  const system = $("system").value.trim();
  const messages = (system ? [{ role: "system", content: system }] : []).concat(history,
    [{ role: "user", content: text }]);
  let tools;
  try { tools = readTools(); } catch (e) { bubble("error", "Error: " + e.message); return; }
  bubble("user", text);
  const div = bubble("assistant", "");
  div.classList.add("streaming");
  const body = {
    model: modelName || undefined,
    messages,
    stream: true,
    stream_options: { include_usage: true },
    temperature: Number($("temperature").value),
    max_tokens: Number($("max-tokens").value),
    top_p: Number($("top-p").value),
  };
  if ($("format").value === "json_object") body.response_format = { type: "json_object" };
  if (tools) { body.tools = tools; body.tool_choice = $("tool-choice").value; }
  const text_el = document.createElement("span");
  div.appendChild(text_el);
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
          text_el.textContent = answer;
          log.scrollTop = log.scrollHeight;
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
    if (body.response_format && answer) {  // a JSON answer, indented once it is whole
      const pre = document.createElement("pre");
      pre.className = "json";
      pre.textContent = pretty(answer);
      text_el.replaceWith(pre);
    }
    const turn = { role: "assistant", content: answer };
    if (calls.length) turn.tool_calls = calls.map((c) => ({
      id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
    if (chatId === myChat) history.push({ role: "user", content: text }, turn);
    const secs = (performance.now() - started) / 1000;
    const tokens = usage ? usage.completion_tokens : "?";
    note(div, `${tokens} tokens in ${secs.toFixed(1)} s` + (finish === "length" ? " (cut at max tokens)" : ""));
    div.dataset.finish = finish || "";
    statusLine.textContent = "";
  } catch (e) {
    if (e.name === "AbortError") {
      // Keep what arrived as the assistant's (partial) turn, unless "New chat" started over.
      if (chatId === myChat) history.push({ role: "user", content: text }, { role: "assistant", content: answer });
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
  send(text);
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
