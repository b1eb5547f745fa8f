// Answers as Markdown, safely: marked parses (vendor/marked.min.js), any raw HTML the model
// writes is escaped back to text (it shows as written, never runs), image syntax is shown
// as text (nothing is fetched because a model wrote a URL), and DOMPurify
// (vendor/purify.min.js) cleans what is left (e.g. javascript: links). Code blocks get a
// copy button.
"use strict";

const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => (
  { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

const md = new marked.Marked({ gfm: true, breaks: true });
md.use({
  renderer: {
    html(token) { return escapeHtml(token.text || token.raw || ""); },
    image(token) { return escapeHtml(token.raw || ""); },
  },
});

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  const area = document.createElement("textarea");  // plain http on another host
  area.value = text;
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  area.remove();
  return Promise.resolve();
}

function addCopyButton(pre) {
  const code = pre.querySelector("code") || pre;
  const btn = document.createElement("button");
  btn.type = "button";
  btn.className = "copy";
  btn.textContent = "Copy";
  btn.addEventListener("click", () => {
    copyText(code.textContent).then(() => { btn.textContent = "Copied"; },
      () => { btn.textContent = "Copy failed"; });
    setTimeout(() => { btn.textContent = "Copy"; }, 2000);
  });
  pre.classList.add("code");
  pre.appendChild(btn);
}

// Renders `text` (Markdown from the model) into `el`, replacing what was there.
function renderMarkdown(el, text) {
  const html = md.parse(text);
  el.innerHTML = DOMPurify.sanitize(html, { USE_PROFILES: { html: true }, FORBID_TAGS: ["img", "style", "form"] });
  for (const a of el.querySelectorAll("a[href]")) { a.target = "_blank"; a.rel = "noopener noreferrer"; }
  for (const pre of el.querySelectorAll("pre")) addCopyButton(pre);
}
