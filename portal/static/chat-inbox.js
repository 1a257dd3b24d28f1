/* EMS chat inbox (/admin/chat): the conversation list beside the open conversation.
 *
 * Most recent first, with each conversation's unread count for the administrators. chat.js
 * calls window.emsChatInbox.refresh(id) when a message or read receipt of that conversation
 * arrives; the entry is re-read from the API (exact unread count) and moved into place.
 * Client names and previews are set with textContent only.
 */
(function () {
  "use strict";
  var listEl = document.querySelector('[data-testid="conversations"]');
  if (!listEl || !window.emsChat) return;
  var emptyNote = document.querySelector('[data-testid="no-conversations"]');
  var title = document.querySelector('[data-testid="open-title"]');
  var api = window.emsChat.api;
  var inFlight = {};  // id -> true, or "again" when another refresh was asked for meanwhile

  function entry(id) {
    return listEl.querySelector('a[data-conversation-id="' + CSS.escape(id) + '"]');
  }

  function span(a, className) {
    var node = a.querySelector("." + className);
    if (!node) {
      node = document.createElement("span");
      node.className = className;
      a.appendChild(node);
    }
    return node;
  }

  function upsert(c) {
    var a = entry(c.id);
    if (!a) {
      var li = document.createElement("li");
      a = document.createElement("a");
      a.className = "conversation";
      a.dataset.conversationId = c.id;
      li.appendChild(a);
      listEl.appendChild(li);
    }
    a.href = "/admin/chat?c=" + encodeURIComponent(c.id);
    a.dataset.clientId = c.client_id;
    a.dataset.lastMessageAt = c.last_message_at || "";
    span(a, "name").textContent = c.client_name || c.client_username;
    var unread = span(a, "unread");
    unread.dataset.testid = "unread";
    unread.textContent = String(c.unread);
    unread.hidden = !c.unread;
    span(a, "preview").textContent = c.last_message || "No messages yet";
    a.classList.toggle("open", c.id === window.emsChat.current());
    emptyNote.hidden = true;
  }

  function sort() {
    function key(li) { return li.firstElementChild.dataset.lastMessageAt || ""; }
    var items = Array.prototype.slice.call(listEl.children);
    items.sort(function (x, y) {
      var a = key(x), b = key(y);
      if (a === b) return 0;
      if (!a) return 1;
      if (!b) return -1;
      return Date.parse(b) - Date.parse(a);
    });
    items.forEach(function (li) { listEl.appendChild(li); });
  }

  function refresh(id) {
    if (inFlight[id]) { inFlight[id] = "again"; return; }
    inFlight[id] = true;
    api("GET", "/api/v1/conversations/" + encodeURIComponent(id)).then(function (c) {
      upsert(c);
      sort();
    }).catch(function () { /* the next event or reload tries again */ })
      .then(function () {
        var again = inFlight[id] === "again";
        delete inFlight[id];
        if (again) refresh(id);
      });
  }

  function reload() {
    api("GET", "/api/v1/conversations").then(function (all) {
      all.forEach(upsert);
      sort();
    }).catch(function () { /* kept as it was */ });
  }

  listEl.addEventListener("click", function (event) {
    var a = event.target.closest("a.conversation");
    if (!a || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    Array.prototype.forEach.call(listEl.querySelectorAll("a.open"), function (node) {
      node.classList.remove("open");
    });
    a.classList.add("open");
    var name = a.querySelector(".name").textContent;
    title.textContent = name;
    history.replaceState(null, "", a.getAttribute("href"));
    window.emsChat.open(a.dataset.conversationId, name);
  });

  window.emsChatInbox = {refresh: refresh, reload: reload};
})();
