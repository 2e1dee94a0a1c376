// Alpine (its CSP build), bundled last so every component above has registered its
// alpine:init listener. It starts once its snapshot of the page's globals, which the
// build spreads over several short tasks (static/build.mjs), is complete: expressions
// are refused access to those globals, so none may run before.
import Alpine from "@alpinejs/csp";

window.Alpine = Alpine;
Alpine.globalsReady.then(() => window.setTimeout(() => Alpine.start(), 0)); // a task of its own
