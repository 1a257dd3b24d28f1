/* Entry module of the chat pages: the client's /chat (the conversation alone) and the
 * administrators' /admin/chat (the inbox beside it). */
import "./portal.js";
import {startChat} from "./chat.js";
import {startInbox} from "./chat-inbox.js";

const panel = document.getElementById("chat");
const conversations = document.querySelector('[data-testid="conversations"]');
if (panel) {
  let inbox = null; // the chat's hooks run on events, after the inbox below has started
  const chat = startChat(panel, {
    changed: (id) => inbox?.refresh(id),
    reconnected: () => inbox?.reload(),
  });
  if (conversations) inbox = startInbox(conversations, chat);
}
