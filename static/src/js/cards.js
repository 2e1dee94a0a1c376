// Small per-item components: a job card, one artifact, one queue's health.
document.addEventListener("alpine:init", () => {
  "use strict";

  const M = window.MySpinBot;

  const STATES = {
    queued: { label: "Queued", badge: "badge-neutral", bar: "bg-zinc-400 dark:bg-zinc-500" },
    active: { label: "Running", badge: "badge-accent", bar: "bg-indigo-500" },
    completed: { label: "Completed", badge: "badge-success", bar: "bg-emerald-500" },
    failed: { label: "Failed", badge: "badge-danger", bar: "bg-red-500" },
    cancelled: { label: "Cancelled", badge: "badge-warning", bar: "bg-amber-500" },
  };
  const UNKNOWN_STATE = { label: "Unknown", badge: "badge-neutral", bar: "bg-zinc-400" };

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  // A job card; `job` comes from the surrounding x-for, `now`/`loras` from the dashboard.
  Alpine.data("jobCard", () => ({
    cancelling: false,
    cancelRequested: false,
    actionError: "",

    get state() {
      return STATES[this.job.state] || UNKNOWN_STATE;
    },

    get domId() {
      return `job-${this.job.id}`;
    },

    get isTrain() {
      return this.job.kind === "train";
    },

    get isGenerate() {
      return this.job.kind === "generate";
    },

    get kindLabel() {
      return this.isTrain ? "Train" : "Generate";
    },

    get input() {
      return this.job.input || {};
    },

    get title() {
      if (this.isTrain) return this.input.name || "Untitled persona";
      return this.input.prompt || "(no prompt)";
    },

    get detail() {
      const input = this.input;
      if (this.isTrain) {
        const images = Array.isArray(input.images) ? input.images : [];
        const parts = [plural(images.length, "image")];
        if (input.voice && input.voice.name) parts.push(`voice: ${input.voice.name}`);
        return parts.join(" · ");
      }
      if (!input.lora) return "Base model";
      const lora = this.loras.find((j) => j.id === input.lora);
      if (!lora) return `Persona ${M.shortId(input.lora)}`; // not among the completed trainings
      return `Persona: ${M.persona(lora).name}`;
    },

    // The line the persona says: the one spoken (the result), else the one asked for.
    get line() {
      if (!this.isGenerate) return "";
      const said = typeof this.result.line === "string" ? this.result.line : "";
      return said || (typeof this.input.say === "string" ? this.input.say : "");
    },

    get lineText() {
      return `speaks: “${this.line}”`;
    },

    // A clip made without a voice engine says so; older jobs and mocks carry no `voice`.
    get voiceNote() {
      if (!this.isGenerate || this.job.state !== "completed") return "";
      return this.result.voice === "no_engine" ? "no voice engine: the clip is silent" : "";
    },

    get result() {
      return this.job.result || {};
    },

    // The shot Ollama wrote, when it is not the prompt as typed.
    get writtenPrompt() {
      const written = this.result.prompt;
      return written && written !== this.input.prompt ? written : "";
    },

    get writtenBy() {
      return this.result.writer ? `Written by ${this.result.writer}` : "Rendered as";
    },

    // The engine's latest preview frame while the job runs; its number busts the cache.
    get previewUrl() {
      const preview = this.result.preview;
      if (this.job.state !== "active" || !preview || !preview.frame) return "";
      return `/api/jobs/${encodeURIComponent(this.job.id)}/preview?frame=${preview.frame}`;
    },

    get previewAlt() {
      return `Live preview of job ${this.job.id}, frame ${this.result.preview.frame}`;
    },

    get stateLabel() {
      if (this.job.state === "active" && this.cancelRequested) return "Cancelling";
      return this.state.label;
    },

    get badgeClass() {
      return this.state.badge;
    },

    get progress() {
      const p = Math.round(Number(this.job.progress) || 0);
      return Math.max(0, Math.min(100, p));
    },

    get progressText() {
      return `${this.progress}%`;
    },

    get barClass() {
      return this.state.bar;
    },

    get barStyle() {
      return { width: `${this.progress}%` };
    },

    get progressLabel() {
      return `${this.kindLabel} job ${this.job.id} progress`;
    },

    get message() {
      return this.canCancel ? this.job.message || "" : "";
    },

    get created() {
      return M.parseTime(this.job.created_at);
    },

    get createdText() {
      return M.formatClock(this.created);
    },

    get createdTitle() {
      return `Created ${M.formatFull(this.created)}`;
    },

    get timeText() {
      const job = this.job;
      const started = M.parseTime(job.started_at);
      const finished = M.parseTime(job.finished_at);
      const from = started || this.created;
      if (job.state === "queued") return `waiting ${M.formatDuration(Math.max(0, this.now - this.created))}`;
      if (job.state === "active") return `running ${M.formatDuration(Math.max(0, this.now - from))}`;
      if (finished === null) return "";
      const took = from ? ` · took ${M.formatDuration(Math.max(0, finished - from))}` : "";
      return `finished ${M.formatAgo(this.now - finished)}${took}`;
    },

    get timeTitle() {
      const finished = M.parseTime(this.job.finished_at);
      return finished === null ? "" : `Finished ${M.formatFull(finished)}`;
    },

    // Attempts count failures and lost workers only; a hand-back on shutdown is a resume.
    get attemptText() {
      const n = Number(this.job.attempt) || 1;
      const parts = n > 1 ? [`attempt ${n}`] : [];
      if (Number(this.job.resumed) > 0) {
        parts.push(this.job.state === "queued" ? "handed back at shutdown" : "resumed after a restart");
      }
      return parts.join(" · ");
    },

    get canCancel() {
      return this.job.state === "queued" || this.job.state === "active";
    },

    get cancelDisabled() {
      return this.cancelling || this.cancelRequested;
    },

    get cancelLabel() {
      return this.cancelDisabled ? "Cancelling…" : "Cancel";
    },

    get cancelAriaLabel() {
      return `Cancel ${this.kindLabel.toLowerCase()} job ${this.job.id}`;
    },

    async cancel() {
      this.cancelling = true;
      this.actionError = "";
      try {
        await this.cancelJob(this.job);
        this.cancelRequested = true;
      } catch (err) {
        this.actionError = err.message;
      } finally {
        this.cancelling = false;
      }
    },

    get hasActionError() {
      return this.actionError !== "";
    },

    get hasError() {
      return Boolean(this.job.error && this.job.error.message);
    },

    get errorText() {
      return this.hasError ? this.job.error.message : "";
    },

    get errorCode() {
      return this.hasError && this.job.error.code ? this.job.error.code : "";
    },

    get artifacts() {
      return Array.isArray(this.job.artifacts) ? this.job.artifacts : [];
    },

    get mediaArtifacts() {
      return this.artifacts.filter((a) => /^(image|video|audio)\//.test(a.content_type || ""));
    },

    get hasMedia() {
      return this.mediaArtifacts.length > 0;
    },

    get hasArtifacts() {
      return this.artifacts.length > 0;
    },

    get cardClass() {
      return this.highlightId === this.job.id ? "bg-indigo-50/70 dark:bg-indigo-500/5" : "";
    },
  }));

  // Cards this near the top are on the first screen: their media load at once, not lazily.
  const EAGER_CARDS = 3;

  // One artifact; `artifact`, `job` and `position` come from the surrounding loops.
  Alpine.data("artifactItem", () => ({
    get type() {
      return this.artifact.content_type || "";
    },

    get isImage() {
      return this.type.startsWith("image/");
    },

    get isVideo() {
      return this.type.startsWith("video/");
    },

    get isAudio() {
      return this.type.startsWith("audio/");
    },

    get url() {
      return this.artifact.url;
    },

    get name() {
      return this.artifact.name;
    },

    get sizeText() {
      return M.formatBytes(Number(this.artifact.size));
    },

    get loading() {
      return this.position < EAGER_CARDS ? "eager" : "lazy";
    },

    get altText() {
      return `${this.artifact.name} from job ${this.job.id}`;
    },

    get downloadLabel() {
      return `Download ${this.artifact.name} (${this.sizeText})`;
    },
  }));

  // One engine server in the health strip; `engine` comes from the surrounding x-for.
  Alpine.data("engineStat", () => ({
    get name() {
      return M.engineName(this.engine);
    },

    get label() {
      return `${this.name} ${this.engine.url}`;
    },

    get stateText() {
      if (!this.engine.up) return "Unreachable";
      return this.engine.version ? `Up · ${this.engine.version}` : "Up";
    },

    get detailText() {
      if (!this.engine.up) return this.engine.error || "";
      if (this.engine.engine === "ollama") return this.engine.model ? `model ${this.engine.model}` : "";
      if (this.engine.engine === "voice") return "speaks the personas’ lines";
      const queue = Number(this.engine.queue) || 0;
      return queue === 0 ? "queue empty" : `${queue} in its queue`;
    },

    get dotClass() {
      return this.engine.up ? "bg-emerald-500" : "bg-red-500";
    },
  }));

  // One queue in the health strip; the queue's name comes from data-queue.
  Alpine.data("queueStat", () => ({
    queue: "",

    init() {
      this.queue = this.$el.dataset.queue || "";
    },

    get known() {
      return Boolean(this.health && this.health.workers && this.health.queues);
    },

    get workers() {
      return this.known ? Number(this.health.workers[this.queue]) || 0 : null;
    },

    get depth() {
      return this.known ? Number(this.health.queues[this.queue]) || 0 : null;
    },

    get noWorkers() {
      return this.workers === 0;
    },

    get workersText() {
      if (this.workers === null) return "—";
      return this.workers === 0 ? "No workers" : plural(this.workers, "worker");
    },

    get depthText() {
      if (this.depth === null) return "";
      return this.depth === 0 ? "nothing waiting" : `${this.depth} waiting`;
    },

    get dotClass() {
      if (this.workers === null) return "bg-zinc-400";
      return this.workers === 0 ? "bg-red-500" : "bg-emerald-500";
    },
  }));
});
