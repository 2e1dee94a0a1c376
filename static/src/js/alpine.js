// Alpine (its CSP build), bundled last so every component above has registered its
// alpine:init listener. Its module snapshots every global value when it loads (some 15 ms);
// starting it in a task of its own keeps that and the page's set-up from adding up to one
// long task.
import Alpine from "@alpinejs/csp";

window.Alpine = Alpine;
window.setTimeout(() => Alpine.start(), 0);
