// The generate form: prompt with a character count and an optional LoRA.
document.addEventListener("alpine:init", () => {
  "use strict";

  const M = window.MySpinBot;

  Alpine.data("generateForm", () => ({
    prompt: "",
    lora: "",
    submitting: false,
    errors: { prompt: "", lora: "", form: "" },
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

    get loraOptions() {
      return this.loras.map((job) => ({
        id: job.id,
        label: job.input && job.input.name ? `${job.input.name} (${M.shortId(job.id)})` : job.id,
      }));
    },

    get noLoras() {
      return this.loras.length === 0;
    },

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

    get loraInvalid() {
      return this.errors.lora !== "";
    },

    onPromptInput() {
      this.errors.prompt = "";
      this.errors.form = "";
      this.status = "";
    },

    onLoraChange() {
      this.errors.lora = "";
    },

    submitOnShortcut(event) {
      if (event.ctrlKey || event.metaKey) this.submit();
    },

    async submit() {
      this.errors = { prompt: "", lora: "", form: "" };
      this.status = "";
      const prompt = this.prompt.trim();
      if (!prompt) {
        this.errors.prompt = "Write a prompt first.";
        return;
      }
      if (this.overLimit || this.submitting) return;
      const body = { prompt };
      if (this.lora) body.lora = this.lora;
      this.submitting = true;
      try {
        const job = await M.api("/api/generate", { method: "POST", json: body });
        this.prompt = "";
        this.status = `Queued generate job ${job.id}.`;
        this.upsertJob(job);
        this.highlight(job.id);
      } catch (err) {
        const field = err.field === "prompt" || err.field === "lora" ? err.field : "form";
        this.errors[field] = err.message;
      } finally {
        this.submitting = false;
      }
    },
  }));
});
