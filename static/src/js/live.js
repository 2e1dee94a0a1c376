// The /ws client: reconnects with jittered exponential backoff and reports its status.
(function () {
  "use strict";

  const ns = (window.MySpinBot = window.MySpinBot || {});

  const MIN_DELAY_MS = 500;
  const MAX_DELAY_MS = 10000;
  // The server sends a health frame every few seconds; a socket silent for this long is dead.
  const SILENCE_LIMIT_MS = 25000;

  function socketUrl() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}/ws`;
  }

  class LiveSocket {
    // handlers: onMessage(msg), onStatus(status, retryAt), onFailedAttempt(); greeting: a
    // message sent on every (re)connect.
    constructor(handlers, greeting = null) {
      this.handlers = handlers;
      this.greeting = greeting;
      this.ws = null;
      this.attempt = 0;
      this.timer = null;
      this.watchdog = null;
      this.lastFrameAt = 0;
      this.heardHealth = false;
      this.stopped = false;
    }

    start() {
      this.stopped = false;
      this.connect();
      this.watchdog = window.setInterval(() => this.checkSilence(), 5000);
    }

    stop() {
      this.stopped = true;
      window.clearTimeout(this.timer);
      window.clearInterval(this.watchdog);
      this.drop();
    }

    connect() {
      this.timer = null;
      this.heardHealth = false;
      this.handlers.onStatus(this.attempt === 0 ? "connecting" : "reconnecting", 0);
      let ws;
      try {
        ws = new WebSocket(socketUrl());
      } catch (_err) {
        this.scheduleRetry(false);
        return;
      }
      this.ws = ws;
      let opened = false;
      ws.addEventListener("open", () => {
        opened = true;
        this.attempt = 0;
        this.lastFrameAt = Date.now();
        if (this.greeting) ws.send(JSON.stringify(this.greeting));
        this.handlers.onStatus("live", 0);
      });
      ws.addEventListener("message", (event) => {
        this.lastFrameAt = Date.now();
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch (_err) {
          return;
        }
        if (msg && msg.type === "health") this.heardHealth = true;
        this.handlers.onMessage(msg);
      });
      ws.addEventListener("close", () => {
        if (this.ws !== ws) return;
        this.ws = null;
        this.scheduleRetry(opened);
      });
    }

    // Forget the current socket without waiting for its closing handshake.
    drop() {
      const ws = this.ws;
      this.ws = null;
      if (ws) {
        try {
          ws.close();
        } catch (_err) {
          // already closing
        }
      }
    }

    scheduleRetry(wasOpen) {
      if (this.stopped) return;
      const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt);
      const delay = Math.round(base / 2 + Math.random() * (base / 2));
      this.attempt += 1;
      const retryAt = Date.now() + delay;
      this.handlers.onStatus("reconnecting", retryAt);
      if (!wasOpen && this.handlers.onFailedAttempt) this.handlers.onFailedAttempt();
      this.timer = window.setTimeout(() => this.connect(), delay);
    }

    // Skip the rest of the backoff (the network came back, or the user asked).
    retryNow() {
      if (this.stopped || this.ws || this.timer === null) return;
      window.clearTimeout(this.timer);
      this.attempt = Math.max(0, this.attempt - 1);
      this.connect();
    }

    checkSilence() {
      if (!this.ws || !this.heardHealth) return;
      if (Date.now() - this.lastFrameAt > SILENCE_LIMIT_MS) {
        this.drop();
        this.scheduleRetry(true);
      }
    }
  }

  ns.LiveSocket = LiveSocket;
})();
