// The admin UI's only script: the Copy button, a confirmation dialog before a
// destructive form is sent, and the playground's answer streamed into the page as it
// arrives. Without it, the pages still work (the server asks to confirm a deletion on a
// page of its own; the playground answers with the whole reply).
"use strict";

function copyText(id, status) {
  const text = document.getElementById(id).textContent.trim();
  const done = () => { status.textContent = "Copied."; };
  const fallback = () => {
    const range = document.createRange();
    range.selectNodeContents(document.getElementById(id));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    status.textContent = document.execCommand("copy") ? "Copied." : "Selected: press Ctrl+C to copy.";
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else {
    fallback();
  }
}

function confirmBeforeSending(form, dialog) {
  form.addEventListener("submit", (event) => {
    const confirmed = form.querySelector("input[name=confirmed]");
    if (confirmed.value === "yes") {
      return;
    }
    event.preventDefault();
    dialog.querySelector("#confirm-text").textContent = form.dataset.confirm;
    const yes = dialog.querySelector("[data-confirm-yes]");
    const no = dialog.querySelector("[data-confirm-no]");
    const opener = document.activeElement;
    const close = () => {
      yes.onclick = null;
      no.onclick = null;
      dialog.close();
      if (opener) { opener.focus(); }
    };
    yes.onclick = () => { confirmed.value = "yes"; close(); form.submit(); };
    no.onclick = close;
    dialog.showModal();
    no.focus();
  });
}

// The playground's form, sent to its stream route: server-sent events of JSON, each
// {"text"}, then {"done", "usage"} or {"error"}. Text goes in as text, never markup.
function streamAnswers(form) {
  const answer = document.getElementById("pg-answer");
  const status = document.getElementById("pg-status");
  const problem = document.getElementById("pg-problem");
  const send = form.querySelector("button[type=submit]");
  const count = (n) => Number(n || 0).toLocaleString("en-US");
  const fail = (text) => {
    problem.textContent = text;
    problem.hidden = false;
    status.textContent = "";
  };
  const handle = (data, requestId) => {
    if (typeof data.text === "string") {
      answer.append(data.text);
    } else if (data.error) {
      fail(data.error);
      return true;
    } else if (data.done) {
      const usage = data.usage || {};
      status.textContent = `Done: ${count(usage.prompt_tokens)} tokens in, ` +
        `${count(usage.completion_tokens)} out.` + (requestId ? ` Request ID ${requestId}.` : "");
      return true;
    }
    return false;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    answer.textContent = "";
    problem.hidden = true;
    problem.textContent = "";
    status.textContent = "Sending…";
    send.disabled = true;
    answer.setAttribute("aria-busy", "true");
    let ended = false;
    try {
      const response = await fetch(form.dataset.stream, {
        method: "POST", body: new URLSearchParams(new FormData(form)),
        credentials: "same-origin", headers: { "Accept": "text/event-stream" },
      });
      if (!(response.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
        fail("Your session has ended: reload the page to sign in again.");
        ended = true;
        return;
      }
      const requestId = response.headers.get("X-Request-ID") || "";
      status.textContent = "Answering…";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) { break; }
        buffer += value;
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (frame.startsWith("data: ")) {
            ended = handle(JSON.parse(frame.slice(6)), requestId) || ended;
          }
          end = buffer.indexOf("\n\n");
        }
      }
    } catch (error) {
      fail(`The answer did not arrive: ${error.message}`);
      ended = true;
    } finally {
      if (!ended) { fail("The answer was cut off before its end."); }
      send.disabled = false;
      answer.removeAttribute("aria-busy");
    }
  });
  form.querySelector("textarea").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const playground = document.getElementById("playground");
  if (playground && window.fetch && window.TextDecoderStream) {
    streamAnswers(playground);
  }
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const status = document.getElementById("copy-status");
    button.addEventListener("click", () => copyText(button.dataset.copy, status));
  }
  const dialog = document.getElementById("confirm");
  if (dialog && typeof dialog.showModal === "function") {
    for (const form of document.querySelectorAll("form[data-confirm]")) {
      confirmBeforeSending(form, dialog);
    }
  }
});
