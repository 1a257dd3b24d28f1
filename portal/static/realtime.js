/* EMS realtime: one WebSocket per tab to /ws, reconnecting, with typed listeners.
 *
 *   window.emsRealtime.on("alert", (msg) => { ... });  // returns a function that unsubscribes
 *   window.emsRealtime.on("*", (msg) => { ... });      // every message
 *   window.emsRealtime.on("open", fn); on("close", fn)  // connection state (refetch on open)
 *   window.emsRealtime.send({type: "chat.typing", ...}); // queued while disconnected
 *   window.emsRealtime.connected                        // true while the socket is open
 *
 * Reconnects with exponential backoff and jitter (0.5 s … 30 s). A socket silent for 60 s
 * (the server pings every 25 s) is presumed dead and replaced. Close code 4401 means the
 * session is over: it stops and emits "unauthenticated".
 */
(function () {
  "use strict";
  if (window.emsRealtime) return;
  var listeners = {};
  var outbox = [];
  var socket = null;
  var attempt = 0;
  var lastSeen = 0;
  var stopped = false;
  var MAX_OUTBOX = 100;

  function emit(type, msg) {
    [type, "*"].forEach(function (key) {
      (listeners[key] || []).slice().forEach(function (fn) {
        try { fn(msg); } catch (err) { console.error("emsRealtime listener for", type, err); }
      });
    });
  }

  function url() {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + location.host + "/ws";
  }

  function schedule() {
    if (stopped) return;
    var base = Math.min(30000, 500 * Math.pow(2, attempt));
    attempt += 1;
    setTimeout(connect, base * (0.5 + Math.random()));
  }

  function connect() {
    if (stopped) return;
    var ws;
    try { ws = new WebSocket(url()); } catch (err) { schedule(); return; }
    socket = ws;
    ws.onopen = function () {
      lastSeen = Date.now();
      attempt = 0;
      api.connected = true;
      while (outbox.length && ws.readyState === WebSocket.OPEN) ws.send(outbox.shift());
      emit("open", {type: "open"});
    };
    ws.onmessage = function (event) {
      lastSeen = Date.now();
      var msg;
      try { msg = JSON.parse(event.data); } catch (err) { return; }
      if (msg && typeof msg.type === "string") emit(msg.type, msg);
    };
    ws.onclose = function (event) {
      if (socket !== ws) return;
      socket = null;
      var was = api.connected;
      api.connected = false;
      if (was) emit("close", {type: "close", code: event.code});
      if (event.code === 4401) {
        stopped = true;
        emit("unauthenticated", {type: "unauthenticated"});
        return;
      }
      schedule();
    };
  }

  setInterval(function () {
    if (socket && api.connected && Date.now() - lastSeen > 60000) socket.close();
  }, 5000);

  var api = {
    connected: false,
    on: function (type, fn) {
      (listeners[type] = listeners[type] || []).push(fn);
      return function () { api.off(type, fn); };
    },
    off: function (type, fn) {
      listeners[type] = (listeners[type] || []).filter(function (f) { return f !== fn; });
    },
    send: function (obj) {
      var text = JSON.stringify(obj);
      if (socket && socket.readyState === WebSocket.OPEN) { socket.send(text); return true; }
      if (outbox.length >= MAX_OUTBOX) outbox.shift();
      outbox.push(text);
      return false;
    },
  };
  window.emsRealtime = api;
  connect();
})();
