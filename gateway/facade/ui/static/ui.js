// The admin UI's only script: the Copy button, and a confirmation dialog before a
// destructive form is sent. Without it, the pages still work (the server asks to
// confirm a deletion on a page of its own).
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

document.addEventListener("DOMContentLoaded", () => {
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
