// The train form: images and a voice sample by drag-and-drop or picker, checked, then uploaded.
document.addEventListener("alpine:init", () => {
  "use strict";

  const M = window.MySpinBot;

  const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp"];
  const IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "webp"];
  const VOICE_TYPES = [
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/mpeg",
    "audio/mp3",
    "audio/flac",
    "audio/x-flac",
    "audio/ogg",
    "application/ogg",
  ];
  const VOICE_EXTENSIONS = ["wav", "mp3", "flac", "ogg", "oga"];
  const FIELDS = ["images", "voice", "name"];

  function extension(name) {
    const dot = name.lastIndexOf(".");
    return dot === -1 ? "" : name.slice(dot + 1).toLowerCase();
  }

  // The browser's type comes from the name; an empty one falls back to the extension.
  function accepted(file, types, extensions) {
    if (file.type) return types.includes(file.type.toLowerCase());
    return extensions.includes(extension(file.name));
  }

  function emptyErrors() {
    return { images: "", voice: "", name: "", form: "" };
  }

  Alpine.data("trainForm", () => {
    let uploadHandle = null;
    let nextKey = 1;

    return {
      name: "",
      images: [],
      voice: null,
      errors: emptyErrors(),
      uploading: false,
      uploadProgress: 0,
      status: "",
      draggingImages: false,
      draggingVoice: false,
      limits: M.limits(),

      destroy() {
        this.images.forEach((image) => URL.revokeObjectURL(image.url));
        if (this.voice) URL.revokeObjectURL(this.voice.url);
      },

      // --- images ----------------------------------------------------------------

      pickImages(event) {
        this.addImages(event.target.files);
        event.target.value = "";
      },

      dragOverImages(event) {
        this.draggingImages = true;
        if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
      },

      dragLeaveImages() {
        this.draggingImages = false;
      },

      dropImages(event) {
        this.draggingImages = false;
        if (event.dataTransfer && !this.uploading) this.addImages(event.dataTransfer.files);
      },

      addImages(fileList) {
        const problems = [];
        const max = this.limits.maxImages;
        for (const file of Array.from(fileList || [])) {
          if (!accepted(file, IMAGE_TYPES, IMAGE_EXTENSIONS)) {
            problems.push(`“${file.name}” is not a PNG, JPEG or WebP image.`);
          } else if (file.size > this.limits.maxImageBytes) {
            problems.push(
              `“${file.name}” is ${M.formatBytes(file.size)}; each image may be at most ${M.formatBytes(this.limits.maxImageBytes)}.`,
            );
          } else if (file.size === 0) {
            problems.push(`“${file.name}” is empty.`);
          } else if (this.images.length >= max) {
            problems.push(`At most ${max} images per training; “${file.name}” was left out.`);
          } else {
            this.images.push({
              key: nextKey++,
              file,
              name: file.name,
              size: file.size,
              url: URL.createObjectURL(file),
            });
          }
        }
        this.errors.form = "";
        this.status = "";
        this.errors.images = problems.length > 1
          ? `${problems[0]} (${problems.length - 1} more ${problems.length === 2 ? "file was" : "files were"} skipped too.)`
          : problems[0] || "";
      },

      removeImage(image) {
        const at = this.images.findIndex((i) => i.key === image.key);
        if (at !== -1) {
          URL.revokeObjectURL(this.images[at].url);
          this.images.splice(at, 1);
        }
        this.errors.images = "";
      },

      clearImages() {
        this.images.forEach((image) => URL.revokeObjectURL(image.url));
        this.images = [];
        this.errors.images = "";
      },

      get hasImages() {
        return this.images.length > 0;
      },

      get imageBytes() {
        return this.images.reduce((sum, image) => sum + image.size, 0);
      },

      get imagesSummary() {
        const n = this.images.length;
        return `${n} of ${this.limits.maxImages} images · ${M.formatBytes(this.imageBytes)}`;
      },

      get imagesHint() {
        return `PNG, JPEG or WebP · 1–${this.limits.maxImages} images · up to ${M.formatBytes(this.limits.maxImageBytes)} each`;
      },

      get imagesInvalid() {
        return this.errors.images !== "";
      },

      get imagesZoneClass() {
        if (this.draggingImages) return "dropzone-active";
        return this.imagesInvalid ? "dropzone-invalid" : "";
      },

      // --- voice -----------------------------------------------------------------

      pickVoice(event) {
        const files = event.target.files;
        if (files && files.length) this.setVoice(files[0], files.length);
        event.target.value = "";
      },

      dragOverVoice(event) {
        this.draggingVoice = true;
        if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
      },

      dragLeaveVoice() {
        this.draggingVoice = false;
      },

      dropVoice(event) {
        this.draggingVoice = false;
        const files = event.dataTransfer ? event.dataTransfer.files : null;
        if (files && files.length && !this.uploading) this.setVoice(files[0], files.length);
      },

      setVoice(file, count) {
        this.errors.form = "";
        this.status = "";
        if (!accepted(file, VOICE_TYPES, VOICE_EXTENSIONS)) {
          this.errors.voice = `“${file.name}” is not a WAV, MP3, FLAC or OGG audio file.`;
          return;
        }
        if (file.size > this.limits.maxVoiceBytes) {
          this.errors.voice = `“${file.name}” is ${M.formatBytes(file.size)}; the voice sample may be at most ${M.formatBytes(this.limits.maxVoiceBytes)}.`;
          return;
        }
        if (file.size === 0) {
          this.errors.voice = `“${file.name}” is empty.`;
          return;
        }
        this.clearVoice();
        this.voice = { file, name: file.name, size: file.size, url: URL.createObjectURL(file) };
        this.errors.voice = count > 1 ? "Only one voice sample is used; the first file was kept." : "";
      },

      clearVoice() {
        if (this.voice) URL.revokeObjectURL(this.voice.url);
        this.voice = null;
        this.errors.voice = "";
      },

      get hasVoice() {
        return this.voice !== null;
      },

      get noVoice() {
        return this.voice === null;
      },

      get voiceName() {
        return this.voice ? this.voice.name : "";
      },

      get voiceSize() {
        return this.voice ? M.formatBytes(this.voice.size) : "";
      },

      get voiceUrl() {
        return this.voice ? this.voice.url : "";
      },

      get voiceHint() {
        return `WAV, MP3, FLAC or OGG · one file up to ${M.formatBytes(this.limits.maxVoiceBytes)}`;
      },

      get voiceInvalid() {
        return this.errors.voice !== "";
      },

      get voiceZoneClass() {
        if (this.draggingVoice) return "dropzone-active";
        return this.voiceInvalid ? "dropzone-invalid" : "";
      },

      // --- name ------------------------------------------------------------------

      onNameInput() {
        this.errors.name = "";
      },

      get nameInvalid() {
        return this.errors.name !== "";
      },

      // --- upload ----------------------------------------------------------------

      get totalBytes() {
        return this.imageBytes + (this.voice ? this.voice.size : 0);
      },

      get cannotSubmit() {
        return this.uploading || !this.hasImages || !this.hasVoice;
      },

      get submitLabel() {
        return this.uploading ? "Uploading…" : "Start training";
      },

      get uploadPercentText() {
        return `${this.uploadProgress}%`;
      },

      get uploadBarStyle() {
        return { width: `${this.uploadProgress}%` };
      },

      get uploadText() {
        if (this.uploadProgress >= 100) return "Upload complete, waiting for the server…";
        return `Uploading ${M.formatBytes(Math.round((this.totalBytes * this.uploadProgress) / 100))} of ${M.formatBytes(this.totalBytes)}`;
      },

      validate() {
        const errors = emptyErrors();
        if (!this.hasImages) errors.images = "Add at least one image.";
        if (!this.hasVoice) errors.voice = "Add a voice sample.";
        if (this.totalBytes > this.limits.maxRequestBytes) {
          errors.form = `These files add up to ${M.formatBytes(this.totalBytes)}; one upload may be at most ${M.formatBytes(this.limits.maxRequestBytes)}.`;
        }
        this.errors = errors;
        return !errors.images && !errors.voice && !errors.form;
      },

      async submit() {
        this.status = "";
        if (this.uploading || !this.validate()) return;
        const data = new FormData();
        for (const image of this.images) data.append("images", image.file, image.name);
        data.append("voice", this.voice.file, this.voice.name);
        if (this.name.trim()) data.append("name", this.name.trim());
        this.uploading = true;
        this.uploadProgress = 0;
        uploadHandle = M.upload("/api/train", data, (fraction) => {
          this.uploadProgress = Math.min(100, Math.round(fraction * 100));
        });
        try {
          const job = await uploadHandle.promise;
          this.reset();
          this.status = `Queued training job ${job.id}.`;
          this.upsertJob(job);
          this.highlight(job.id);
        } catch (err) {
          if (err.code !== "aborted") {
            const field = FIELDS.includes(err.field) ? err.field : "form";
            this.errors[field] = err.message;
          } else {
            this.status = err.message;
          }
        } finally {
          uploadHandle = null;
          this.uploading = false;
        }
      },

      abortUpload() {
        if (uploadHandle) uploadHandle.abort();
      },

      reset() {
        this.clearImages();
        this.clearVoice();
        this.name = "";
        this.errors = emptyErrors();
        this.uploadProgress = 0;
      },
    };
  });
});

document.addEventListener("alpine:init", () => {
  "use strict";

  // One image thumbnail in the train form; `image` comes from the surrounding x-for.
  Alpine.data("imagePreview", () => ({
    get removeLabel() {
      return `Remove ${this.image.name}`;
    },

    get sizeText() {
      return window.MySpinBot.formatBytes(this.image.size);
    },

    remove() {
      this.removeImage(this.image);
    },
  }));
});
