// Personas: completed training jobs as a person sees them (name, photo, voice, trigger token),
// the strip of persona cards, and the names the generate form offers them by.
(function () {
  "use strict";

  const ns = (window.MySpinBot = window.MySpinBot || {});

  const UNTITLED = "Untitled persona";

  function artifactUrl(job, name) {
    const found = (Array.isArray(job.artifacts) ? job.artifacts : []).find((a) => a.name === name);
    return found && found.url ? found.url : "";
  }

  // What the dashboard shows of a completed training job. Jobs trained before personas had
  // photos, voices and trigger tokens lack some of these: each is "" then.
  function persona(job) {
    const input = job.input || {};
    const result = job.result || {};
    const name = typeof input.name === "string" && input.name.trim() ? input.name.trim() : UNTITLED;
    return {
      id: job.id,
      name,
      trigger: typeof result.trigger === "string" ? result.trigger : "",
      photoUrl: artifactUrl(job, "photo.jpg"),
      voiceUrl: artifactUrl(job, "voice.wav"),
      voiceFile: input.voice && input.voice.name ? String(input.voice.name) : "",
      created: ns.parseTime(job.created_at),
    };
  }

  // Names to pick personas by, never job ids: a name two personas share gets its trigger
  // token, else when it was trained, else a number, to tell them apart. Returns id -> label.
  function personaLabels(personas) {
    const tellApart = [
      (p) => (p.trigger ? `${p.name} · ${p.trigger}` : ""),
      (p) => `${p.name} · trained ${ns.formatFull(p.created)}`,
    ];
    const labels = new Map(personas.map((p) => [p.id, p.name]));
    for (const way of tellApart) {
      const counts = countLabels(labels);
      for (const p of personas) {
        const label = way(p);
        if (counts.get(labels.get(p.id)) > 1 && label) labels.set(p.id, label);
      }
    }
    const counts = countLabels(labels);
    const seen = new Map();
    for (const p of personas.slice().reverse()) {
      const label = labels.get(p.id);
      if (counts.get(label) === 1) continue;
      const n = (seen.get(label) || 0) + 1; // oldest first: #1 keeps its number
      seen.set(label, n);
      labels.set(p.id, `${label} #${n}`);
    }
    return labels;
  }

  function countLabels(labels) {
    const counts = new Map();
    for (const label of labels.values()) counts.set(label, (counts.get(label) || 0) + 1);
    return counts;
  }

  // The first letters of a name, for a persona without a photo.
  function initials(name) {
    const words = name.split(/[\s,.;:·-]+/).filter(Boolean);
    return words.slice(0, 2).map((w) => Array.from(w)[0].toUpperCase()).join("") || "?";
  }

  Object.assign(ns, { persona, personaLabels, personaInitials: initials });
})();

document.addEventListener("alpine:init", () => {
  "use strict";

  const M = window.MySpinBot;

  // One persona card; `persona` comes from the surrounding x-for, `personaId` (the persona
  // the generate form uses) and `pickPersona` from the dashboard.
  Alpine.data("personaCard", () => ({
    get domId() {
      return `persona-${this.persona.id}`;
    },

    get hasPhoto() {
      return this.persona.photoUrl !== "";
    },

    get noPhoto() {
      return !this.hasPhoto;
    },

    get initials() {
      return M.personaInitials(this.persona.name);
    },

    get photoAlt() {
      return `Photo of ${this.persona.name}`;
    },

    get hasTrigger() {
      return this.persona.trigger !== "";
    },

    get triggerTitle() {
      return `Trigger token: ${this.persona.trigger}`;
    },

    get hasVoice() {
      return this.persona.voiceUrl !== "";
    },

    get noVoice() {
      return !this.hasVoice;
    },

    get voiceLabel() {
      return `Voice sample of ${this.persona.name}`;
    },

    get voiceNote() {
      return this.persona.voiceFile ? `voice: ${this.persona.voiceFile}` : "no voice sample";
    },

    get picked() {
      return this.personaId === this.persona.id;
    },

    // The button reads "Use for a clip"; a screen reader hears whom: "Use Alex for a clip".
    get pickName() {
      return ` ${this.persona.name}`;
    },

    get pickClass() {
      return this.picked ? "btn-primary" : "btn-outline";
    },

    get cardClass() {
      return this.picked
        ? "border-indigo-400 ring-2 ring-indigo-500/30 dark:border-indigo-400"
        : "border-zinc-200 dark:border-zinc-800";
    },

    pick() {
      this.pickPersona(this.persona.id);
    },
  }));
});
