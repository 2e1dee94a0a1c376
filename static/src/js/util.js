// Shared helpers: API calls with CSRF, uploads with progress, limits, formatting.
(function () {
  "use strict";

  const ns = (window.MySpinBot = window.MySpinBot || {});

  class ApiError extends Error {
    constructor(status, code, message, field) {
      super(message);
      this.name = "ApiError";
      this.status = status;
      this.code = code;
      this.field = field || "";
    }
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function goToLogin() {
    window.location.assign("/login");
  }

  function errorFromBody(status, statusText, text) {
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (_err) {
      body = null;
    }
    const err = body && typeof body === "object" ? body.error : null;
    if (err && typeof err.message === "string") {
      return new ApiError(status, err.code || "error", err.message, err.field);
    }
    if (status === 413) {
      return new ApiError(status, "too_large", "The upload is larger than the server accepts.");
    }
    const reason = statusText ? ` (${status} ${statusText})` : ` (${status})`;
    return new ApiError(status, "http_error", `The server could not handle the request${reason}.`);
  }

  const networkError = () =>
    new ApiError(0, "network", "Could not reach the server. Check the connection and try again.");

  async function api(path, options = {}) {
    const method = options.method || "GET";
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (method !== "GET" && method !== "HEAD") {
      headers["X-CSRF-Token"] = csrfToken();
    }
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (_err) {
      throw networkError();
    }
    if (res.status === 401) {
      goToLogin();
      throw new ApiError(401, "unauthorized", "Please sign in again.");
    }
    const text = await res.text();
    if (!res.ok) {
      throw errorFromBody(res.status, res.statusText, text);
    }
    return text ? JSON.parse(text) : null;
  }

  // POST multipart data with upload progress; returns {promise, abort}.
  function upload(path, formData, onProgress) {
    const xhr = new XMLHttpRequest();
    const promise = new Promise((resolve, reject) => {
      xhr.open("POST", path);
      xhr.withCredentials = true;
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable && event.total > 0) {
          onProgress(event.loaded / event.total);
        }
      });
      xhr.addEventListener("load", () => {
        if (xhr.status === 401) {
          goToLogin();
          reject(new ApiError(401, "unauthorized", "Please sign in again."));
        } else if (xhr.status >= 200 && xhr.status < 300) {
          onProgress(1);
          try {
            resolve(JSON.parse(xhr.responseText));
          } catch (_err) {
            reject(new ApiError(xhr.status, "bad_response", "The server sent an unreadable answer."));
          }
        } else {
          reject(errorFromBody(xhr.status, xhr.statusText, xhr.responseText));
        }
      });
      xhr.addEventListener("error", () => reject(networkError()));
      xhr.addEventListener("abort", () =>
        reject(new ApiError(0, "aborted", "Upload cancelled.")),
      );
      xhr.send(formData);
    });
    return { promise, abort: () => xhr.abort() };
  }

  function readInt(value, fallback) {
    const n = Number.parseInt(value, 10);
    return Number.isFinite(n) && n > 0 ? n : fallback;
  }

  // Upload limits rendered by the server on <body data-*>, so the checks here mirror its own.
  function limits() {
    const d = document.body.dataset;
    return {
      maxImages: readInt(d.maxImages, 50),
      maxImageBytes: readInt(d.maxImageBytes, 20 * 1024 * 1024),
      maxVoiceBytes: readInt(d.maxVoiceBytes, 50 * 1024 * 1024),
      maxRequestBytes: readInt(d.maxRequestBytes, 1100 * 1024 * 1024),
      maxPromptChars: readInt(d.maxPromptChars, 2000),
    };
  }

  function formatBytes(n) {
    if (!Number.isFinite(n) || n < 0) return "";
    if (n < 1024) return `${n} B`;
    const units = ["KiB", "MiB", "GiB"];
    let value = n / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    const digits = value < 10 && value % 1 !== 0 ? 1 : 0;
    return `${value.toFixed(digits)} ${units[unit]}`;
  }

  function formatDuration(ms) {
    if (!Number.isFinite(ms) || ms < 0) return "";
    const s = ms / 1000;
    if (s < 10) return `${s.toFixed(1)} s`;
    if (s < 60) return `${Math.round(s)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
    const h = Math.floor(m / 60);
    return `${h} h ${String(m % 60).padStart(2, "0")} min`;
  }

  function formatAgo(ms) {
    if (!Number.isFinite(ms)) return "";
    if (ms < 5000) return "just now";
    const s = Math.floor(ms / 1000);
    if (s < 60) return `${s} s ago`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ago`;
    const h = Math.floor(m / 60);
    if (h < 24) return `${h} h ago`;
    return `${Math.floor(h / 24)} d ago`;
  }

  function parseTime(iso) {
    if (!iso) return null;
    const t = Date.parse(iso);
    return Number.isNaN(t) ? null : t;
  }

  // Times are formatted by hand, 24-hour and in the page's words: the first locale format of
  // a page (toLocaleTimeString and co.) loads ICU's data, one long task of ~100 ms on a
  // throttled phone, and each call after builds a formatter anew.
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const pad = (n) => String(n).padStart(2, "0");

  function clockOf(date) {
    return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  }

  function formatClock(ms) {
    if (ms === null) return "";
    const date = new Date(ms);
    if (date.toDateString() === new Date().toDateString()) return clockOf(date);
    return `${MONTHS[date.getMonth()]} ${date.getDate()} ${clockOf(date)}`;
  }

  function formatFull(ms) {
    if (ms === null) return "";
    const date = new Date(ms);
    const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
    return `${day} ${clockOf(date)}`;
  }

  // Count characters the way the server does (code points, not UTF-16 units).
  function charLength(text) {
    let n = 0;
    for (const _ch of text) n += 1;
    return n;
  }

  // An engine entry of /health as a person names it.
  const ENGINE_NAMES = { ollama: "Ollama", voice: "Voice engine", comfyui: "ComfyUI" };

  function engineName(engine) {
    return ENGINE_NAMES[engine.engine] || "ComfyUI";
  }

  function shortId(id) {
    const s = String(id || "");
    return s.length > 10 ? `${s.slice(0, 4)}…${s.slice(-4)}` : s;
  }

  Object.assign(ns, {
    ApiError,
    api,
    upload,
    limits,
    formatBytes,
    formatDuration,
    formatAgo,
    formatClock,
    formatFull,
    parseTime,
    charLength,
    shortId,
    engineName,
  });
})();
