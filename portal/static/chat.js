/* EMS chat: the client's chat page (/chat) and the administrators' inbox (/admin/chat).
 *
 * History comes from /api/v1/conversations/{id}/messages (newest page first, "Load older"
 * pages back); new messages, typing and read receipts arrive over the portal's WebSocket
 * (window.emsRealtime: chat.message, chat.typing, chat.read). User text is only ever set with
 * textContent, never parsed as HTML.
 */
(function () {
  "use strict";
  var panel = document.getElementById("chat");
  if (!panel) return;
  var rt = window.emsRealtime;
  var me = panel.dataset.me;
  var role = panel.dataset.role;
  var kinds = JSON.parse(document.getElementById("ems-labels").textContent || "{}").alert_kind || {};
  var logBox = panel.querySelector(".chat-log");
  var list = panel.querySelector(".chat-messages");
  var olderButton = panel.querySelector(".chat-older");
  var emptyNote = panel.querySelector(".chat-empty");
  var typingNote = panel.querySelector(".chat-typing");
  var form = panel.querySelector(".chat-form");
  var input = form.querySelector("textarea");
  var sendButton = form.querySelector("button[type=submit]");
  var errorNote = form.querySelector(".chat-error");
  var counter = form.querySelector(".chat-count");

  var TYPING_TTL_MS = 5000;   // the other side's indicator goes away without a fresh ping
  var TYPING_EVERY_MS = 2000; // how often we tell them we are still typing
  var TYPING_IDLE_MS = 3000;  // no key for this long: we stopped typing
  var PAGE = 50;
  var MAX_BODY = 4000;

  var state = {
    id: panel.dataset.conversationId || "",
    clientName: panel.dataset.clientName || "",
    items: {},          // message id -> {m, li}
    oldest: null,
    typingTimer: null,  // clears the other side's indicator
    typingSentAt: 0,
    idleTimer: null,
    reading: false,
  };

  function csrf() {
    var found = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return found ? decodeURIComponent(found[1]) : "";
  }

  function api(method, path, body) {
    var options = {method: method, credentials: "same-origin", headers: {Accept: "application/json"}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRF-Token"] = csrf();
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error(data.detail || "the server answered " + response.status);
          error.status = response.status;
          throw error;
        }
        return data;
      });
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function when(iso) {
    return new Date(iso).toLocaleString([], {dateStyle: "short", timeStyle: "short"});
  }

  function alertText(alert) {
    var text = "About alert: " + (kinds[alert.kind] || alert.kind) + " · " + alert.device_name;
    return alert.hour ? text + " · " + when(alert.hour) : text;
  }

  function ourSide(m) { return m.sender_role === role; }

  function showError(text) {
    errorNote.textContent = text || "";
    errorNote.hidden = !text;
  }

  // -- rendering -------------------------------------------------------------------------

  function render(m) {
    var li = el("li", "chat-message " + (ourSide(m) ? "ours" : "theirs"));
    li.dataset.id = String(m.id);
    li.dataset.testid = "message";
    var who = m.sender_id === me ? "You" : m.sender_name || (m.sender_role === "admin" ? "Support" : "Client");
    li.appendChild(el("span", "who", who));
    if (m.alert) li.appendChild(el("span", "about", alertText(m.alert)));
    else if (m.alert_id) li.appendChild(el("span", "about", "About an alert"));
    li.appendChild(el("p", "body", m.body));
    var meta = el("span", "meta");
    var time = el("time", null, when(m.created_at));
    time.dateTime = m.created_at;
    meta.appendChild(time);
    if (ourSide(m)) {
      var receipt = el("span", "receipt", m.read_at ? "Read" : "Sent");
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
    var receipt = item.li.querySelector(".receipt");
    if (receipt) { receipt.textContent = "Read"; item.li.classList.add("read"); }
  }

  function nearBottom() { return logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 80; }
  function toBottom() { logBox.scrollTop = logBox.scrollHeight; }

  function add(m) {
    if (String(m.conversation_id) !== state.id) return false;
    var known = state.items[m.id];
    if (known) { if (m.read_at) setRead(known, m.read_at); return false; }
    var item = {m: m, li: render(m)};
    state.items[m.id] = item;
    var next = null;
    for (var node = list.lastElementChild; node; node = node.previousElementSibling) {
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
    var url = "/api/v1/conversations/" + state.id + "/messages?limit=" + PAGE;
    return before ? url + "&before=" + before : url;
  }

  function loadLatest() {
    var id = state.id;
    if (!id) return Promise.resolve();
    return api("GET", messagesUrl(null)).then(function (page) {
      if (id !== state.id) return;
      var stick = nearBottom() || list.children.length === 0;
      page.messages.forEach(add);
      if (list.children.length <= page.messages.length) olderButton.hidden = !page.has_more;
      emptyNote.hidden = list.children.length > 0;
      if (stick) toBottom();
      markRead();
    }).catch(function (error) { showError("Could not load the conversation: " + error.message); });
  }

  function loadOlder() {
    var id = state.id;
    var height = logBox.scrollHeight;
    olderButton.disabled = true;
    api("GET", messagesUrl(state.oldest)).then(function (page) {
      if (id !== state.id) return;
      page.messages.forEach(add);
      olderButton.hidden = !page.has_more;
      logBox.scrollTop += logBox.scrollHeight - height;  // keep what was on screen in place
    }).catch(function (error) { showError(error.message); })
      .then(function () { olderButton.disabled = false; });
  }

  function markRead() {
    if (!state.id || state.reading || document.visibilityState !== "visible") return;
    var upTo = 0;
    Object.keys(state.items).forEach(function (key) {
      var m = state.items[key].m;
      if (!ourSide(m) && !m.read_at && m.id > upTo) upTo = m.id;
    });
    if (!upTo) return;
    state.reading = true;
    var id = state.id;
    api("POST", "/api/v1/conversations/" + id + "/read", {up_to: upTo}).then(function (r) {
      state.reading = false;
      if (id !== state.id) return;
      Object.keys(state.items).forEach(function (key) {
        var item = state.items[key];
        if (!ourSide(item.m) && item.m.id <= upTo) item.m.read_at = item.m.read_at || r.read_at || true;
      });
      markRead();  // what arrived while this was on its way
    }, function () {
      state.reading = false;  // tried again with the next message or visit
    });
  }

  // -- typing ----------------------------------------------------------------------------

  function clearTyping() {
    clearTimeout(state.typingTimer);
    typingNote.hidden = true;
    typingNote.textContent = "";
  }

  function showTyping(msg) {
    var who;
    if (msg.sender_role === "client") who = (state.clientName || "The client") + " is typing…";
    else who = role === "client" ? "Support is typing…" : "Another administrator is typing…";
    typingNote.textContent = who;
    typingNote.hidden = false;
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(clearTyping, TYPING_TTL_MS);
  }

  function sendTyping(typing) {
    if (!state.id || !rt || !rt.connected) return;
    rt.send({type: "chat.typing", conversation_id: state.id, typing: typing});
  }

  function stopTyping() {
    clearTimeout(state.idleTimer);
    if (state.typingSentAt) { state.typingSentAt = 0; sendTyping(false); }
  }

  input.addEventListener("input", function () {
    var length = input.value.length;
    counter.textContent = length > MAX_BODY - 500 ? length + " / " + MAX_BODY : "";
    if (!input.value.trim()) { stopTyping(); return; }
    var now = Date.now();
    if (now - state.typingSentAt >= TYPING_EVERY_MS) { state.typingSentAt = now; sendTyping(true); }
    clearTimeout(state.idleTimer);
    state.idleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  });

  // -- sending ---------------------------------------------------------------------------

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = input.value;
    if (!state.id || !body.trim()) return;
    var payload = {body: body};
    var ref = form.querySelector(".chat-alert-ref");
    if (ref) payload.alert_id = ref.dataset.alertId;
    sendButton.disabled = true;
    showError("");
    api("POST", "/api/v1/conversations/" + state.id + "/messages", payload).then(function (m) {
      add(m);
      toBottom();
      input.value = "";
      counter.textContent = "";
      if (ref) ref.remove();
      stopTyping();
      if (window.emsChatInbox) window.emsChatInbox.refresh(state.id);
    }).catch(function (error) { showError(error.message); })
      .then(function () { sendButton.disabled = false; input.focus(); });
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  olderButton.addEventListener("click", loadOlder);
  form.addEventListener("click", function (event) {
    if (event.target.classList.contains("chat-alert-remove")) event.target.parentElement.remove();
  });
  document.addEventListener("visibilitychange", markRead);

  // -- live events -----------------------------------------------------------------------

  if (rt) {
    rt.on("chat.message", function (msg) {
      var m = msg.message;
      if (msg.conversation_id === state.id) {
        var stick = nearBottom() || ourSide(m);
        if (add(m) && stick) toBottom();
        if (m.sender_id !== me) clearTyping();
        markRead();
      }
      if (window.emsChatInbox) window.emsChatInbox.refresh(msg.conversation_id);
    });
    rt.on("chat.typing", function (msg) {
      if (msg.conversation_id !== state.id || msg.sender_id === me) return;
      if (msg.typing) showTyping(msg); else clearTyping();
    });
    rt.on("chat.read", function (msg) {
      if (msg.conversation_id === state.id) {
        Object.keys(state.items).forEach(function (key) {
          var item = state.items[key];
          if (item.m.id <= msg.up_to && item.m.sender_role !== msg.reader_role) {
            setRead(item, msg.read_at);
          }
        });
      }
      if (window.emsChatInbox) window.emsChatInbox.refresh(msg.conversation_id);
    });
    // The socket may have opened before this script ran (realtime.js starts it first): then
    // the next "open" is already a reconnect, and must catch up.
    var opened = rt.connected;
    rt.on("open", function () {
      // After a reconnect, catch up on what was said meanwhile (events are not replayed).
      if (opened) { loadLatest(); if (window.emsChatInbox) window.emsChatInbox.reload(); }
      opened = true;
    });
  }

  // -- the inbox switches conversations in place -----------------------------------------

  window.emsChat = {
    open: function (id, clientName) {
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
    current: function () { return state.id; },
    api: api,
  };
  form.hidden = !state.id;
  if (state.id) loadLatest();
})();
