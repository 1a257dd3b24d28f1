/* EMS chat inbox (/admin/chat): the conversation list beside the open conversation.
 *
 * Most recent first, with each conversation's unread count for the administrators. The chat
 * (chat.js) tells chat-page.js when a message or read receipt of a conversation arrives, which
 * calls refresh(id): the entry is re-read from the API (exact unread count) and moved into
 * place. Client names and previews are set with textContent only.
 */
import {api} from "./api.js";

/* Starts the inbox in `listEl` ([data-testid=conversations]); a click opens the conversation
 * in `chat` (startChat's answer) without a page load. Returns {refresh(id), reload()}. */
export function startInbox(listEl, chat) {
  const emptyNote = document.querySelector('[data-testid="no-conversations"]');
  const title = document.querySelector('[data-testid="open-title"]');
  const inFlight = {}; // id -> true, or "again" when another refresh was asked for meanwhile

  function entry(id) {
    return listEl.querySelector('a[data-conversation-id="' + CSS.escape(id) + '"]');
  }

  function span(a, className) {
    let node = a.querySelector("." + className);
    if (!node) {
      node = document.createElement("span");
      node.className = className;
      a.appendChild(node);
    }
    return node;
  }

  function upsert(c) {
    let a = entry(c.id);
    if (!a) {
      const li = document.createElement("li");
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
    const unread = span(a, "unread");
    unread.dataset.testid = "unread";
    unread.textContent = String(c.unread);
    unread.hidden = !c.unread;
    span(a, "preview").textContent = c.last_message || "No messages yet";
    a.classList.toggle("open", c.id === chat.current());
    emptyNote.hidden = true;
  }

  function sort() {
    const key = (li) => li.firstElementChild.dataset.lastMessageAt || "";
    const items = Array.from(listEl.children);
    items.sort((x, y) => {
      const a = key(x);
      const b = key(y);
      if (a === b) return 0;
      if (!a) return 1;
      if (!b) return -1;
      return Date.parse(b) - Date.parse(a);
    });
    items.forEach((li) => listEl.appendChild(li));
  }

  function refresh(id) {
    if (inFlight[id]) {
      inFlight[id] = "again";
      return;
    }
    inFlight[id] = true;
    api("GET", "/api/v1/conversations/" + encodeURIComponent(id))
      .then((c) => {
        upsert(c);
        sort();
      })
      .catch(() => {
        /* the next event or reload tries again */
      })
      .then(() => {
        const again = inFlight[id] === "again";
        delete inFlight[id];
        if (again) refresh(id);
      });
  }

  function reload() {
    api("GET", "/api/v1/conversations")
      .then((all) => {
        all.forEach(upsert);
        sort();
      })
      .catch(() => {
        /* kept as it was */
      });
  }

  listEl.addEventListener("click", (event) => {
    const a = event.target.closest("a.conversation");
    if (!a || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    listEl.querySelectorAll("a.open").forEach((node) => node.classList.remove("open"));
    a.classList.add("open");
    const name = a.querySelector(".name").textContent;
    title.textContent = name;
    history.replaceState(null, "", a.getAttribute("href"));
    chat.open(a.dataset.conversationId, name);
  });

  return {refresh, reload};
}
