/* EMS alerts in every signed-in page: the bell's unread count and a toast per new alert.
 *
 * The count comes from GET /api/v1/alerts/unread-count on load and after every reconnect
 * (events missed while disconnected are not replayed), then from the "unread" field of each
 * {"type": "alert"} socket message (realtime.js). Toasts use textContent only.
 */
import {labels} from "./labels.js";
import {realtime} from "./realtime.js";

const TITLES = labels("alert_kind");
const TOAST_MS = 15000;

function bell() {
  return document.querySelector("[data-testid=bell-count]");
}

function setCount(n) {
  const el = bell();
  if (!el || typeof n !== "number") return;
  el.textContent = n > 99 ? "99+" : String(n);
  el.hidden = n <= 0;
  const link = el.parentElement;
  if (link) link.setAttribute("aria-label", n + " unread alert" + (n === 1 ? "" : "s"));
}

function refresh() {
  fetch("/api/v1/alerts/unread-count", {credentials: "same-origin"})
    .then((r) => (r.ok ? r.json() : null))
    .then((body) => {
      if (body) setCount(body.unread);
    })
    .catch(() => {
      /* the next alert or reconnect will tell */
    });
}

function container() {
  let box = document.getElementById("ems-toasts");
  if (!box) {
    box = document.createElement("div");
    box.id = "ems-toasts";
    box.className = "toasts";
    box.setAttribute("role", "status");
    box.setAttribute("aria-live", "polite");
    document.body.appendChild(box);
  }
  return box;
}

function toast(alert) {
  const el = document.createElement("div");
  el.className = "toast toast-" + alert.kind;
  el.setAttribute("data-testid", "toast");
  el.setAttribute("data-alert-id", alert.id);
  const close = document.createElement("button");
  close.type = "button";
  close.className = "close";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => el.remove());
  const title = document.createElement("strong");
  title.textContent = TITLES[alert.kind] || "Alert";
  const text = document.createElement("span");
  text.className = "toast-text";
  text.textContent = alert.text;
  const link = document.createElement("a");
  link.href = "/alerts?show=unread";
  link.textContent = " View alerts";
  el.append(close, title, text, link);
  if (document.body.dataset.role === "client") {
    // The chat opens with a message that refers to this alert (portal/chat/pages.py).
    const ask = document.createElement("a");
    ask.href = "/chat?alert=" + encodeURIComponent(alert.id);
    ask.setAttribute("data-testid", "toast-ask");
    ask.textContent = " Ask support";
    el.appendChild(ask);
  }
  container().appendChild(el);
  setTimeout(() => el.remove(), TOAST_MS);
}

// A module runs once the document is parsed (modules are deferred), so the bell is there.
realtime.on("alert", (msg) => {
  setCount(msg.unread);
  if (msg.event === "raised" && msg.alert) toast(msg.alert);
});
realtime.on("open", refresh);
refresh();
