// The generate form: a prompt with a character count, a persona picked by name, and the line
// the persona says (when a voice engine is configured).
document.addEventListener("alpine:init", () => {
  "use strict";

  const M = window.MySpinBot;
  const FIELDS = ["prompt", "lora", "say"];

  function emptyErrors() {
    return { prompt: "", lora: "", say: "", form: "" };
  }

  // `personaId`, `personas`, `voiceEngine` and `ollamaEngine` come from the dashboard.
  Alpine.data("generateForm", () => ({
    prompt: "",
    say: "",
    submitting: false,
    errors: emptyErrors(),
    status: "",
    maxChars: 2000,

    init() {
      this.maxChars = M.limits().maxPromptChars;
    },

    get charCount() {
      return M.charLength(this.prompt);
    },

    get charCountText() {
      return `${this.charCount} / ${this.maxChars}`;
    },

    get overLimit() {
      return this.charCount > this.maxChars;
    },

    get charCountClass() {
      return this.overLimit ? "text-red-600 dark:text-red-400 font-medium" : "";
    },

    // --- persona -------------------------------------------------------------------

    get personaOptions() {
      const personas = this.personas;
      const labels = M.personaLabels(personas);
      return personas.map((p) => ({ id: p.id, label: labels.get(p.id) }));
    },

    get noPersonas() {
      return this.personas.length === 0;
    },

    // Always one line, whether or not there are personas yet: the form keeps its height.
    get personaHint() {
      if (this.noPersonas) return "Trained personas appear here.";
      return "Pick one here, or with “Use for a clip” on its card.";
    },

    get pickedPersona() {
      return this.personaId ? this.personas.find((p) => p.id === this.personaId) || null : null;
    },

    get loraInvalid() {
      return this.errors.lora !== "";
    },

    onPersonaChange() {
      this.errors.lora = "";
    },

    // --- the spoken line ---------------------------------------------------------------

    get line() {
      return this.say.trim();
    },

    get sayInvalid() {
      return this.errors.say !== "";
    },

    // Who says what in the clip, as far as this page can tell: empty until /health has
    // answered, "no voice engine" when none is configured.
    get speaksText() {
      if (!this.health) return "";
      if (!this.voiceEngine) return "no voice engine: the clip is silent";
      const who = this.pickedPersona ? `${this.pickedPersona.name} speaks` : "speaks";
      if (this.line) return `${who}: “${this.line}”`;
      if (this.ollamaEngine) return `${who}: a line ${this.ollamaModel} writes for the shot`;
      return `${who}: nothing until you type a line`;
    },

    get ollamaModel() {
      return this.ollamaEngine && this.ollamaEngine.model ? this.ollamaEngine.model : "Ollama";
    },

    get speaksClass() {
      return this.voiceEngine ? "text-zinc-700 dark:text-zinc-300" : "";
    },

    onSayInput() {
      this.errors.say = "";
      this.errors.form = "";
    },

    // --- submit --------------------------------------------------------------------------

    get cannotSubmit() {
      return this.submitting || this.prompt.trim() === "" || this.overLimit;
    },

    get submitLabel() {
      return this.submitting ? "Queueing…" : "Generate";
    },

    get promptInvalid() {
      return this.errors.prompt !== "" || this.overLimit;
    },

    get promptError() {
      if (this.errors.prompt) return this.errors.prompt;
      if (this.overLimit) return `The prompt is ${this.charCount - this.maxChars} characters too long.`;
      return "";
    },

    onPromptInput() {
      this.errors.prompt = "";
      this.errors.form = "";
      this.status = "";
    },

    submitOnShortcut(event) {
      if (event.ctrlKey || event.metaKey) this.submit();
    },

    requestBody(prompt) {
      const body = { prompt };
      if (this.personaId) body.lora = this.personaId;
      if (this.line) body.say = this.line;
      return body;
    },

    async submit() {
      this.errors = emptyErrors();
      this.status = "";
      const prompt = this.prompt.trim();
      if (!prompt) {
        this.errors.prompt = "Write a prompt first.";
        return;
      }
      if (this.overLimit || this.submitting) return;
      this.submitting = true;
      try {
        const job = await M.api("/api/generate", { method: "POST", json: this.requestBody(prompt) });
        this.prompt = "";
        this.say = "";
        this.status = `Queued generate job ${job.id}.`;
        this.upsertJob(job);
        this.highlight(job.id);
      } catch (err) {
        this.errors[FIELDS.includes(err.field) ? err.field : "form"] = err.message;
      } finally {
        this.submitting = false;
      }
    },
  }));
});
