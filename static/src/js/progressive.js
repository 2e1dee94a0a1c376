// Progressive start-up. Alpine sets a tree up in one task, and the dashboard (forms, health
// strip, cards) is one tree: on a phone that was a long task of several hundred ms right
// after the first paint. An element marked `x-init-later` (a region) has its own directives
// set up at once and its children in later tasks, a few per task within a time budget, in
// document order, a region inside a child going before the next child. The region keeps
// the attribute until its last child is set up, so CSS can hide what is not ready yet
// (a job card). The first key press, pointer press, click (assistive technologies click
// without a press) or focus sets up everything left at once, before that event's own
// handlers, which see it: nothing a person touches is inert. Each time
// nothing is left, `<html data-started>` is set and `myspinbot:started` is dispatched;
// `MySpinBot.afterSetUp(callback)` runs a callback then (at once when nothing is left).
document.addEventListener("alpine:init", () => {
  "use strict";

  const BUDGET_MS = 4; // of work per task: 16 ms on a phone 4x slower, a long task is 50 ms
  const INPUT_EVENTS = ["keydown", "pointerdown", "click", "focusin"];
  const pending = []; // children still to set up, in order: {region, child}
  // region -> what it waits for: its children not set up yet, and the regions met inside them
  const left = new Map();
  const outer = new Map(); // region -> the region whose child held it
  let current = null; // the region whose child is being set up
  let discovered = null; // children of regions met meanwhile: they go first
  let scheduled = false;
  let callbacks = []; // for when nothing is left
  const channel = new MessageChannel();
  channel.port1.onmessage = () => work();

  // A directive's inline part runs during Alpine's walk, before it descends: setting
  // `_x_ignore` there is how Alpine's own x-ignore skips the children. Ordered last, so the
  // element's other directives (which Alpine skips once `_x_ignore` is set) run first.
  Alpine.directive("init-later", Object.assign(() => {}, { inline: defer })).before("teleport");

  function defer(region) {
    region._x_ignore = true;
    if (current) {
      outer.set(region, current);
      left.set(current, left.get(current) + 1);
    }
    const children = Array.from(region.children, (child) => ({ region, child }));
    if (children.length === 0) return complete(region);
    left.set(region, children.length);
    (discovered || pending).push(...children);
    schedule();
  }

  // One thing `region` waited for is done.
  function finished(region) {
    const remaining = left.get(region) - 1;
    if (remaining > 0) left.set(region, remaining);
    else complete(region);
  }

  function complete(region) {
    delete region._x_ignore;
    region.removeAttribute("x-init-later");
    left.delete(region);
    const parent = outer.get(region);
    if (parent === undefined) return;
    outer.delete(region);
    finished(parent);
  }

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    channel.port2.postMessage(null);
  }

  function setUp({ region, child }) {
    delete region._x_ignore; // Alpine.initTree refuses anything inside an ignored element
    if (child.isConnected) {
      current = region;
      discovered = [];
      try {
        Alpine.initTree(child);
      } finally {
        pending.unshift(...discovered);
        discovered = null;
        current = null;
      }
    }
    finished(region);
  }

  function work(budget = BUDGET_MS) {
    scheduled = false;
    const until = performance.now() + budget;
    while (pending.length > 0 && performance.now() < until) setUp(pending.shift());
    if (pending.length > 0) {
      schedule();
    } else {
      document.documentElement.dataset.started = "";
      document.dispatchEvent(new CustomEvent("myspinbot:started"));
      const due = callbacks;
      callbacks = [];
      for (const callback of due) callback();
    }
  }

  window.MySpinBot.afterSetUp = (callback) => {
    if (pending.length > 0) callbacks.push(callback);
    else callback();
  };

  function setUpEverything() {
    if (pending.length > 0) work(Infinity);
  }

  for (const type of INPUT_EVENTS) {
    document.addEventListener(type, setUpEverything, { capture: true, passive: true });
  }
  // A page without regions is started as soon as Alpine is.
  document.addEventListener("alpine:initialized", () => {
    if (pending.length === 0) work();
  });
});
