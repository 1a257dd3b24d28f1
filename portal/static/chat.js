/* EMS chat: the open conversation of the client's chat page (/chat) and of the
 * administrators' inbox (/admin/chat); chat-page.js starts it.
 *
 * History comes from /api/v1/conversations/{id}/messages (newest page first, "Load older"
 * pages back); new messages, typing and read receipts arrive over the portal's WebSocket
 * (realtime.js: chat.message, chat.typing, chat.read). User text is only ever set with
 * textContent, never parsed as HTML.
 */
import {api} from "./api.js";
import {realtime as rt} from "./realtime.js";
import {labels} from "./labels.js";

const TYPING_TTL_MS = 5000; // the other side's indicator goes away without a fresh ping
const TYPING_EVERY_MS = 2000; // how often we tell them we are still typing
const TYPING_IDLE_MS = 3000; // no key for this long: we stopped typing
const PAGE = 50;
const MAX_BODY = 4000;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function when(iso) {
  return new Date(iso).toLocaleString([], {dateStyle: "short", timeStyle: "short"});
}

/* Starts the chat in `panel` (templates/chat/panel.html) and returns {open(id, clientName),
 * current()} for the inbox, which switches conversations in place. `hooks.changed(id)` hears
 * that a conversation has a new message or read receipt, `hooks.reconnected()` that the
 * socket came back (events missed meanwhile are not replayed). */
export function startChat(panel, hooks = {}) {
  const changed = hooks.changed || (() => {});
  const reconnected = hooks.reconnected || (() => {});
  const me = panel.dataset.me;
  const role = panel.dataset.role;
  const kinds = labels("alert_kind");
  const logBox = panel.querySelector(".chat-log");
  const list = panel.querySelector(".chat-messages");
  const olderButton = panel.querySelector(".chat-older");
  const emptyNote = panel.querySelector(".chat-empty");
  const typingNote = panel.querySelector(".chat-typing");
  const form = panel.querySelector(".chat-form");
  const input = form.querySelector("textarea");
  const sendButton = form.querySelector("button[type=submit]");
  const errorNote = form.querySelector(".chat-error");
  const counter = form.querySelector(".chat-count");

  const state = {
    id: panel.dataset.conversationId || "",
    clientName: panel.dataset.clientName || "",
    items: {}, // message id -> {m, li}
    oldest: null,
    typingTimer: null, // clears the other side's indicator
    typingSentAt: 0,
    idleTimer: null,
    reading: false,
  };

  function alertText(alert) {
    const text = "About alert: " + (kinds[alert.kind] || alert.kind) + " · " + alert.device_name;
    return alert.hour ? text + " · " + when(alert.hour) : text;
  }

  function ourSide(m) {
    return m.sender_role === role;
  }

  function showError(text) {
    errorNote.textContent = text || "";
    errorNote.hidden = !text;
  }

  // -- rendering -------------------------------------------------------------------------

  function render(m) {
    const li = el("li", "chat-message " + (ourSide(m) ? "ours" : "theirs"));
    li.dataset.id = String(m.id);
    li.dataset.testid = "message";
    const who =
      m.sender_id === me ? "You" : m.sender_name || (m.sender_role === "admin" ? "Support" : "Client");
    li.appendChild(el("span", "who", who));
    if (m.alert) li.appendChild(el("span", "about", alertText(m.alert)));
    else if (m.alert_id) li.appendChild(el("span", "about", "About an alert"));
    li.appendChild(el("p", "body", m.body));
    const meta = el("span", "meta");
    const time = el("time", null, when(m.created_at));
    time.dateTime = m.created_at;
    meta.appendChild(time);
    if (ourSide(m)) {
      const receipt = el("span", "receipt", m.read_at ? "Read" : "Sent");
      receipt.dataset.testid = "receipt";
      meta.appendChild(receipt);
      if (m.read_at) li.classList.add("read");
    }
    li.appendChild(meta);
    return li;
  }

  function setRead(item, readAt) {
    if (item.m.read_at) return;
    item.m.read_at = readAt;
    const receipt = item.li.querySelector(".receipt");
    if (receipt) {
      receipt.textContent = "Read";
      item.li.classList.add("read");
    }
  }

  function nearBottom() {
    return logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 80;
  }

  function toBottom() {
    logBox.scrollTop = logBox.scrollHeight;
  }

  function add(m) {
    if (String(m.conversation_id) !== state.id) return false;
    const known = state.items[m.id];
    if (known) {
      if (m.read_at) setRead(known, m.read_at);
      return false;
    }
    const item = {m, li: render(m)};
    state.items[m.id] = item;
    let next = null;
    for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
      if (Number(node.dataset.id) < m.id) break;
      next = node;
    }
    list.insertBefore(item.li, next);
    if (state.oldest === null || m.id < state.oldest) state.oldest = m.id;
    emptyNote.hidden = true;
    return true;
  }

  // -- history and read receipts ---------------------------------------------------------

  function messagesUrl(before) {
    const url = "/api/v1/conversations/" + state.id + "/messages?limit=" + PAGE;
    return before ? url + "&before=" + before : url;
  }

  function loadLatest() {
    const id = state.id;
    if (!id) return Promise.resolve();
    return api("GET", messagesUrl(null))
      .then((page) => {
        if (id !== state.id) return;
        const stick = nearBottom() || list.children.length === 0;
        page.messages.forEach(add);
        if (list.children.length <= page.messages.length) olderButton.hidden = !page.has_more;
        emptyNote.hidden = list.children.length > 0;
        if (stick) toBottom();
        markRead();
      })
      .catch((error) => showError("Could not load the conversation: " + error.message));
  }

  function loadOlder() {
    const id = state.id;
    const height = logBox.scrollHeight;
    olderButton.disabled = true;
    api("GET", messagesUrl(state.oldest))
      .then((page) => {
        if (id !== state.id) return;
        page.messages.forEach(add);
        olderButton.hidden = !page.has_more;
        logBox.scrollTop += logBox.scrollHeight - height; // keep what was on screen in place
      })
      .catch((error) => showError(error.message))
      .then(() => {
        olderButton.disabled = false;
      });
  }

  function markRead() {
    if (!state.id || state.reading || document.visibilityState !== "visible") return;
    let upTo = 0;
    Object.keys(state.items).forEach((key) => {
      const m = state.items[key].m;
      if (!ourSide(m) && !m.read_at && m.id > upTo) upTo = m.id;
    });
    if (!upTo) return;
    state.reading = true;
    const id = state.id;
    api("POST", "/api/v1/conversations/" + id + "/read", {up_to: upTo}).then(
      (r) => {
        state.reading = false;
        if (id !== state.id) return;
        Object.keys(state.items).forEach((key) => {
          const item = state.items[key];
          if (!ourSide(item.m) && item.m.id <= upTo) item.m.read_at = item.m.read_at || r.read_at || true;
        });
        markRead(); // what arrived while this was on its way
      },
      () => {
        state.reading = false; // tried again with the next message or visit
      },
    );
  }

  // -- typing ----------------------------------------------------------------------------

  function clearTyping() {
    clearTimeout(state.typingTimer);
    typingNote.hidden = true;
    typingNote.textContent = "";
  }

  function showTyping(msg) {
    let who;
    if (msg.sender_role === "client") who = (state.clientName || "The client") + " is typing…";
    else who = role === "client" ? "Support is typing…" : "Another administrator is typing…";
    typingNote.textContent = who;
    typingNote.hidden = false;
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(clearTyping, TYPING_TTL_MS);
  }

  function sendTyping(typing) {
    if (!state.id || !rt.connected) return;
    rt.send({type: "chat.typing", conversation_id: state.id, typing});
  }

  function stopTyping() {
    clearTimeout(state.idleTimer);
    if (state.typingSentAt) {
      state.typingSentAt = 0;
      sendTyping(false);
    }
  }

  input.addEventListener("input", () => {
    const length = input.value.length;
    counter.textContent = length > MAX_BODY - 500 ? length + " / " + MAX_BODY : "";
    if (!input.value.trim()) {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (now - state.typingSentAt >= TYPING_EVERY_MS) {
      state.typingSentAt = now;
      sendTyping(true);
    }
    clearTimeout(state.idleTimer);
    state.idleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  });

  // -- sending ---------------------------------------------------------------------------

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = input.value;
    if (!state.id || !body.trim()) return;
    const payload = {body};
    const ref = form.querySelector(".chat-alert-ref");
    if (ref) payload.alert_id = ref.dataset.alertId;
    sendButton.disabled = true;
    showError("");
    api("POST", "/api/v1/conversations/" + state.id + "/messages", payload)
      .then((m) => {
        add(m);
        toBottom();
        input.value = "";
        counter.textContent = "";
        if (ref) ref.remove();
        stopTyping();
        changed(state.id);
      })
      .catch((error) => showError(error.message))
      .then(() => {
        sendButton.disabled = false;
        input.focus();
      });
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  olderButton.addEventListener("click", loadOlder);
  form.addEventListener("click", (event) => {
    if (event.target.classList.contains("chat-alert-remove")) event.target.parentElement.remove();
  });
  document.addEventListener("visibilitychange", markRead);

  // -- live events -----------------------------------------------------------------------

  rt.on("chat.message", (msg) => {
    const m = msg.message;
    if (msg.conversation_id === state.id) {
      const stick = nearBottom() || ourSide(m);
      if (add(m) && stick) toBottom();
      if (m.sender_id !== me) clearTyping();
      markRead();
    }
    changed(msg.conversation_id);
  });
  rt.on("chat.typing", (msg) => {
    if (msg.conversation_id !== state.id || msg.sender_id === me) return;
    if (msg.typing) showTyping(msg);
    else clearTyping();
  });
  rt.on("chat.read", (msg) => {
    if (msg.conversation_id === state.id) {
      Object.keys(state.items).forEach((key) => {
        const item = state.items[key];
        if (item.m.id <= msg.up_to && item.m.sender_role !== msg.reader_role) {
          setRead(item, msg.read_at);
        }
      });
    }
    changed(msg.conversation_id);
  });
  // If the socket is already open, the next "open" is a reconnect and must catch up.
  let opened = rt.connected;
  rt.on("open", () => {
    // After a reconnect, catch up on what was said meanwhile (events are not replayed).
    if (opened) {
      loadLatest();
      reconnected();
    }
    opened = true;
  });

  form.hidden = !state.id;
  if (state.id) loadLatest();

  return {
    open(id, clientName) {
      if (id === state.id) return;
      stopTyping();
      clearTyping();
      showError("");
      state.id = id;
      state.clientName = clientName || "";
      state.items = {};
      state.oldest = null;
      panel.dataset.conversationId = id;
      list.textContent = "";
      olderButton.hidden = true;
      form.hidden = false;
      loadLatest();
      input.focus();
    },
    current() {
      return state.id;
    },
  };
}
