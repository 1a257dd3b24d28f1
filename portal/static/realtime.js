/* EMS realtime: one WebSocket per tab to /ws, reconnecting, with typed listeners.
 *
 *   import {realtime} from "./realtime.js";
 *   realtime.on("alert", (msg) => { ... });    // returns a function that unsubscribes
 *   realtime.on("*", (msg) => { ... });        // every message
 *   realtime.on("open", fn); on("close", fn)   // connection state (refetch on open)
 *   realtime.send({type: "chat.typing", ...}); // queued while disconnected
 *   realtime.connected                         // true while the socket is open
 *
 * A module is evaluated once per page however many modules import it, so every script of a
 * page shares this one socket. The state is also mirrored on <html data-realtime=…>
 * ("connecting", "open", "closed", "signed-out") for styles and for the browser tests.
 *
 * Reconnects with exponential backoff and jitter (0.5 s … 30 s). A socket silent for 60 s
 * (the server pings every 25 s) is presumed dead and replaced. Close code 4401 means the
 * session is over: it stops and emits "unauthenticated".
 */
const MAX_OUTBOX = 100;
const listeners = {};
const outbox = [];
let socket = null;
let attempt = 0;
let lastSeen = 0;
let stopped = false;

export const realtime = {
  connected: false,
  on(type, fn) {
    (listeners[type] = listeners[type] || []).push(fn);
    return () => realtime.off(type, fn);
  },
  off(type, fn) {
    listeners[type] = (listeners[type] || []).filter((f) => f !== fn);
  },
  send(obj) {
    const text = JSON.stringify(obj);
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(text);
      return true;
    }
    if (outbox.length >= MAX_OUTBOX) outbox.shift();
    outbox.push(text);
    return false;
  },
};

function emit(type, msg) {
  [type, "*"].forEach((key) => {
    (listeners[key] || []).slice().forEach((fn) => {
      try {
        fn(msg);
      } catch (err) {
        console.error("realtime listener for", type, err);
      }
    });
  });
}

function show(state) {
  document.documentElement.dataset.realtime = state;
}

function url() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return scheme + "//" + location.host + "/ws";
}

function schedule() {
  if (stopped) return;
  const base = Math.min(30000, 500 * Math.pow(2, attempt));
  attempt += 1;
  setTimeout(connect, base * (0.5 + Math.random()));
}

function connect() {
  if (stopped) return;
  let ws;
  try {
    ws = new WebSocket(url());
  } catch {
    schedule();
    return;
  }
  socket = ws;
  show("connecting");
  ws.onopen = () => {
    lastSeen = Date.now();
    attempt = 0;
    realtime.connected = true;
    show("open");
    while (outbox.length && ws.readyState === WebSocket.OPEN) ws.send(outbox.shift());
    emit("open", {type: "open"});
  };
  ws.onmessage = (event) => {
    lastSeen = Date.now();
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (msg && typeof msg.type === "string") emit(msg.type, msg);
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = null;
    const was = realtime.connected;
    realtime.connected = false;
    if (was) emit("close", {type: "close", code: event.code});
    if (event.code === 4401) {
      stopped = true;
      show("signed-out");
      emit("unauthenticated", {type: "unauthenticated"});
      return;
    }
    show("closed");
    schedule();
  };
}

setInterval(() => {
  if (socket && realtime.connected && Date.now() - lastSeen > 60000) socket.close();
}, 5000);

connect();
