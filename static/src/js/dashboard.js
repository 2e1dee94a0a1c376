// The dashboard root: job list, live socket, health, filters, find by id, announcements.
document.addEventListener("alpine:init", () => {
  "use strict";

  const M = window.MySpinBot;
  const MAX_JOBS = 200;
  // A first snapshot renders this many cards at once and the rest a few per task, so a long
  // list never holds the page in one long task (each card is cloned and bound, and its
  // contents set up in later tasks: see progressive.js).
  const FIRST_CARDS = 4;
  const CARDS_PER_TASK = 2;
  const KIND_LABELS = { train: "Train", generate: "Generate" };
  const STATE_WORDS = {
    queued: "is queued",
    active: "started",
    completed: "completed",
    failed: "failed",
    cancelled: "was cancelled",
  };

  function createdMs(job) {
    return M.parseTime(job.created_at) || 0;
  }

  // Newest first; ids break ties (they sort by creation time).
  function newerFirst(a, b) {
    const d = createdMs(b) - createdMs(a);
    if (d !== 0) return d;
    return String(b.id) < String(a.id) ? -1 : String(b.id) > String(a.id) ? 1 : 0;
  }

  function jobText(job) {
    const input = job.input || {};
    return [job.id, input.prompt, input.name, input.say].filter(Boolean).join(" ").toLowerCase();
  }

  Alpine.data("dashboard", () => {
    let live = null;
    let clock = null;
    let healthFrameAt = 0;
    let healthTimer = null;
    const lastHeard = new Map();
    let pending = []; // snapshot jobs not rendered yet, newest first
    let pendingTimer = null;

    return {
      jobs: [],
      pendingCount: 0,
      loras: [], // completed training jobs, newest first: the personas
      lorasLoaded: false,
      personaId: "", // the persona the generate form uses ("" for the base model)
      health: null,
      healthError: "",
      connection: "connecting",
      retryAt: 0,
      everLive: false,
      now: Date.now(),
      filterKind: "",
      filterState: "",
      query: "",
      findMessage: "",
      findBusy: false,
      highlightId: "",
      announcement: "",

      init() {
        live = new M.LiveSocket(
          {
            onMessage: (msg) => this.onMessage(msg),
            onStatus: (status, retryAt) => this.onStatus(status, retryAt),
            onFailedAttempt: () => this.probeAuth(),
          },
          { type: "subscribe", topics: ["health"] },
        );
        live.start();
        clock = window.setInterval(() => {
          this.now = Date.now();
        }, 1000);
        window.addEventListener("online", () => live.retryNow());
        // A file dropped outside a drop zone must not navigate away from the page.
        window.addEventListener("dragover", (event) => event.preventDefault());
        window.addEventListener("drop", (event) => event.preventDefault());
        this.fetchHealth();
      },

      destroy() {
        if (live) live.stop();
        window.clearInterval(clock);
        window.clearTimeout(pendingTimer);
      },

      // --- socket -----------------------------------------------------------

      onStatus(status, retryAt) {
        this.connection = status;
        this.retryAt = retryAt;
        if (status === "live") {
          // Back after an outage: the strip's figures are stale until the next health frame.
          if (this.everLive) this.fetchHealth();
          this.everLive = true;
        }
      },

      onMessage(msg) {
        if (!msg || typeof msg !== "object") return;
        if (msg.type === "snapshot" && Array.isArray(msg.jobs)) {
          this.replaceJobs(msg.jobs);
          this.fetchLoras();
        } else if (msg.type === "health" && msg.health) {
          healthFrameAt = Date.now();
          this.health = msg.health;
          this.healthError = "";
        } else if (msg.job && typeof msg.job === "object") {
          this.upsertJob(msg.job);
          this.refreshHealthSoon();
        }
      },

      // Queue depths move with job events; when the socket has not brought a health frame
      // lately, ask /health once after a burst of events instead.
      refreshHealthSoon() {
        if (healthTimer !== null || Date.now() - healthFrameAt < 10000) return;
        healthTimer = window.setTimeout(() => {
          healthTimer = null;
          this.fetchHealth();
        }, 1000);
      },

      retryNow() {
        if (live) live.retryNow();
      },

      async probeAuth() {
        try {
          await M.api("/api/jobs?limit=1");
        } catch (_err) {
          // api() already sends a 401 to the sign-in page; anything else is the outage itself.
        }
      },

      async fetchHealth() {
        try {
          const res = await fetch("/health", {
            credentials: "same-origin",
            headers: { Accept: "application/json" },
          });
          const body = res.status === 200 || res.status === 503 ? await res.json() : null;
          if (!body || typeof body.status !== "string") {
            this.healthError = `The server's health check answered ${res.status}.`;
            return;
          }
          this.health = body;
          this.healthError = "";
        } catch (_err) {
          this.healthError = "The server's health check is not answering.";
        }
      },

      async fetchLoras() {
        try {
          const body = await M.api("/api/jobs?kind=train&state=completed&limit=200");
          if (body && Array.isArray(body.jobs)) {
            // Trainings that completed while the list was on its way are kept.
            const fetched = new Set(body.jobs.map((j) => j.id));
            const arrived = this.loras.filter((j) => !fetched.has(j.id));
            this.loras = body.jobs.concat(arrived).sort(newerFirst);
          }
        } catch (_err) {
          // The picker keeps what it has; completed trainings still arrive over the socket.
        } finally {
          this.lorasLoaded = true;
        }
      },

      // --- personas -------------------------------------------------------------

      get personas() {
        return this.loras.map(M.persona);
      },

      get hasPersonas() {
        return this.loras.length > 0;
      },

      get personasEmpty() {
        return this.lorasLoaded && this.loras.length === 0;
      },

      get personasLoading() {
        return !this.lorasLoaded && this.loras.length === 0;
      },

      get personaCountText() {
        if (this.personasLoading) return "";
        const n = this.loras.length;
        return n === 1 ? "1 persona" : `${n} personas`;
      },

      // A persona card's "Use for a clip": the generate form takes it, and the prompt the focus.
      pickPersona(id) {
        this.personaId = id;
        const picked = this.personas.find((p) => p.id === id);
        if (picked) this.announcement = `${picked.name} picked for the next clip.`;
        this.$nextTick(() => {
          const prompt = document.getElementById("prompt");
          if (!prompt) return;
          prompt.focus({ preventScroll: true });
          prompt.scrollIntoView({ block: "nearest", behavior: "smooth" });
        });
      },

      // --- job list -----------------------------------------------------------

      replaceJobs(jobs) {
        const fresh = jobs.filter((j) => j && j.id).sort(newerFirst);
        lastHeard.clear();
        for (const job of fresh) lastHeard.set(job.id, this.progressMark(job));
        // A resync keeps the cards it has (x-for reuses them by id): no need to stagger it.
        const stagger = this.jobs.length === 0 && fresh.length > FIRST_CARDS;
        pending = stagger ? fresh.slice(FIRST_CARDS) : [];
        this.pendingCount = pending.length;
        this.jobs = stagger ? fresh.slice(0, FIRST_CARDS) : fresh;
        if (stagger) this.renderPendingSoon();
      },

      renderPendingSoon() {
        if (pendingTimer !== null) return;
        pendingTimer = window.setTimeout(() => {
          pendingTimer = null;
          this.renderPending(CARDS_PER_TASK);
          if (pending.length > 0) this.renderPendingSoon();
        }, 0);
      },

      renderPending(count = Infinity) {
        for (const job of pending.splice(0, count)) {
          if (!this.jobs.some((j) => j.id === job.id)) this.insertJob(job);
        }
        this.pendingCount = pending.length;
      },

      // Every job the page knows, rendered or still waiting for its card.
      get allJobs() {
        return this.pendingCount > 0 ? this.jobs.concat(pending) : this.jobs;
      },

      upsertJob(job) {
        if (!job || !job.id) return;
        this.announce(job);
        const existing = this.jobs.find((j) => j.id === job.id);
        const waiting = existing ? null : pending.find((j) => j.id === job.id);
        if (existing) Object.assign(existing, job);
        else if (waiting) Object.assign(waiting, job);
        else this.insertJob(job);
        if (job.kind === "train" && job.state === "completed") this.addLora(job);
      },

      insertJob(job) {
        const at = this.jobs.findIndex((j) => newerFirst(job, j) < 0);
        if (at === -1) this.jobs.push(job);
        else this.jobs.splice(at, 0, job);
        if (this.jobs.length > MAX_JOBS) this.jobs.splice(MAX_JOBS);
      },

      addLora(job) {
        const existing = this.loras.find((j) => j.id === job.id);
        if (existing) Object.assign(existing, job);
        else this.loras = [job, ...this.loras].sort(newerFirst);
      },

      async cancelJob(job) {
        const updated = await M.api(`/api/jobs/${encodeURIComponent(job.id)}/cancel`, {
          method: "POST",
        });
        if (updated && updated.id) this.upsertJob(updated);
        return updated;
      },

      highlight(id) {
        this.highlightId = id;
        window.setTimeout(() => {
          if (this.highlightId === id) this.highlightId = "";
        }, 6000);
        // Once its card is rendered, and shown: a card shows once it is set up.
        this.$nextTick(() =>
          M.afterSetUp(() => {
            const el = document.getElementById(`job-${id}`);
            if (el) el.scrollIntoView({ block: "nearest", behavior: "smooth" });
          }),
        );
      },

      // --- announcements (aria-live) -------------------------------------------

      progressMark(job) {
        return `${job.state}:${Math.floor((Number(job.progress) || 0) / 25)}`;
      },

      announce(job) {
        const mark = this.progressMark(job);
        const before = lastHeard.get(job.id);
        lastHeard.set(job.id, mark);
        if (before === mark) return;
        const what = `${KIND_LABELS[job.kind] || "A"} job ${M.shortId(job.id)}`;
        const beforeState = before ? before.split(":")[0] : "";
        if (beforeState !== job.state) {
          const failure = job.state === "failed" && job.error ? `: ${job.error.message}` : "";
          this.announcement = `${what} ${STATE_WORDS[job.state] || job.state}${failure}.`;
        } else if (job.state === "active") {
          this.announcement = `${what} is ${Number(job.progress) || 0}% done.`;
        }
      },

      // --- filters and search -------------------------------------------------

      get visibleJobs() {
        const q = this.query.trim().toLowerCase();
        return this.jobs.filter(
          (job) =>
            (!this.filterKind || job.kind === this.filterKind) &&
            (!this.filterState || job.state === this.filterState) &&
            (!q || jobText(job).includes(q)),
        );
      },

      get filtersActive() {
        return Boolean(this.filterKind || this.filterState || this.query.trim());
      },

      get summaryText() {
        const total = this.allJobs.length;
        const shown = this.visibleJobs.length;
        const running = this.countState("active");
        const waiting = this.countState("queued");
        const parts = [];
        if (this.filtersActive) parts.push(`${shown} of ${total} shown`);
        else parts.push(`${total} ${total === 1 ? "job" : "jobs"}`);
        if (running) parts.push(`${running} running`);
        if (waiting) parts.push(`${waiting} queued`);
        return parts.join(" · ");
      },

      async applyFilters() {
        this.findMessage = "";
        if (!this.filterKind && !this.filterState) return;
        const params = new URLSearchParams({ limit: "50" });
        if (this.filterKind) params.set("kind", this.filterKind);
        if (this.filterState) params.set("state", this.filterState);
        try {
          const body = await M.api(`/api/jobs?${params}`);
          for (const job of (body && body.jobs) || []) this.upsertJob(job);
        } catch (err) {
          this.findMessage = err.message;
        }
      },

      clearFilters() {
        this.filterKind = "";
        this.filterState = "";
        this.query = "";
        this.findMessage = "";
      },

      onQueryInput() {
        this.findMessage = "";
      },

      async findJob() {
        const id = this.query.trim();
        this.findMessage = "";
        if (!id) return;
        const held = this.allJobs.find((j) => j.id === id);
        if (held) {
          this.renderPending();
          this.highlight(id);
          return;
        }
        this.findBusy = true;
        try {
          const job = await M.api(`/api/status/${encodeURIComponent(id)}`);
          this.upsertJob(job);
          this.highlight(job.id);
        } catch (err) {
          this.findMessage =
            err.status === 404 ? `No job has the id “${id}”.` : err.message;
        } finally {
          this.findBusy = false;
        }
      },

      get hasFindMessage() {
        return this.findMessage !== "";
      },

      // --- empty and loading states -------------------------------------------

      get hasVisibleJobs() {
        return this.visibleJobs.length > 0;
      },

      get showLoading() {
        return !this.everLive && this.jobs.length === 0 && this.connection === "connecting";
      },

      get showUnreachable() {
        return !this.everLive && this.jobs.length === 0 && this.connection === "reconnecting";
      },

      get showEmpty() {
        return this.everLive && this.jobs.length === 0;
      },

      get showNoMatch() {
        return this.jobs.length > 0 && this.visibleJobs.length === 0;
      },

      // --- connection and health ----------------------------------------------

      get isLive() {
        return this.connection === "live";
      },

      get isOffline() {
        return this.connection === "reconnecting";
      },

      get connectionLabel() {
        if (this.connection === "live") return "Live";
        if (this.connection === "connecting") return "Connecting…";
        return "Reconnecting…";
      },

      get connectionDotClass() {
        if (this.connection === "live") return "bg-emerald-500";
        if (this.connection === "connecting") return "bg-zinc-400 animate-pulse";
        return "bg-amber-500 animate-pulse";
      },

      get retryText() {
        if (this.connection !== "reconnecting") return "";
        const left = this.retryAt - this.now;
        if (!this.retryAt || left <= 500) return "trying now";
        return `next try in ${Math.ceil(left / 1000)} s`;
      },

      get staleClass() {
        return this.connection === "live" ? "" : "opacity-60";
      },

      countState(state) {
        return this.allJobs.filter((j) => j.state === state).length;
      },

      get activityText() {
        const running = this.countState("active");
        const queued = this.countState("queued");
        if (running) return `${running} running`;
        if (queued) return `${queued} queued`;
        return "Idle";
      },

      get activityHint() {
        const running = this.countState("active");
        const queued = this.countState("queued");
        const parts = [];
        if (running && queued) parts.push(`${queued} queued`);
        parts.push(`${this.countState("completed")} completed`);
        const failed = this.countState("failed");
        if (failed) parts.push(`${failed} failed`);
        return parts.join(" · ");
      },

      get activityDotClass() {
        if (this.countState("active")) return "bg-indigo-500 animate-pulse";
        if (this.countState("queued")) return "bg-zinc-400";
        return "bg-zinc-300 dark:bg-zinc-600";
      },

      get redisOk() {
        return Boolean(this.health && this.health.redis === "ok");
      },

      get redisLabel() {
        if (!this.health) return this.healthError ? "Unknown" : "Checking…";
        return this.health.redis === "ok" ? "Connected" : "Unreachable";
      },

      get redisDotClass() {
        if (!this.health) return "bg-zinc-400";
        return this.redisOk ? "bg-emerald-500" : "bg-red-500";
      },

      get healthLabel() {
        if (!this.health) return this.healthError ? "No answer" : "Checking…";
        return this.health.status === "ok" ? "Healthy" : "Degraded";
      },

      get warnings() {
        const out = [];
        if (this.healthError && this.everLive) out.push(this.healthError);
        const h = this.health;
        if (h && h.redis && h.redis !== "ok") {
          out.push(`Redis is unreachable (${h.redis}): jobs can’t be queued or updated until it is back.`);
        }
        for (const engine of this.engines) {
          if (!engine.up) {
            out.push(`${M.engineName(engine)} at ${engine.url} is unreachable: jobs that need it wait and retry until it is back.`);
          }
        }
        if (h && h.workers) {
          for (const queue of ["train", "generate"]) {
            if (Number(h.workers[queue]) === 0) {
              out.push(`No worker is serving the ${queue} queue: new ${queue} jobs will wait until one starts.`);
            }
          }
        }
        return out;
      },

      // Engine servers the workers use (every ComfyUI of a multi-GPU set-up), from /health.
      get engines() {
        return this.health && Array.isArray(this.health.engines) ? this.health.engines : [];
      },

      // The voice engine of /health's engines (MYSPINBOT_VOICE_URL), when one is configured.
      get voiceEngine() {
        return this.engines.find((e) => e.engine === "voice") || null;
      },

      get ollamaEngine() {
        return this.engines.find((e) => e.engine === "ollama") || null;
      },

      get hasEngines() {
        return this.engines.length > 0;
      },

      get hasWarnings() {
        return this.warnings.length > 0;
      },
    };
  });
});
