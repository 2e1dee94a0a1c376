// Build the dashboard's assets into static/dist/ (usage: node static/build.mjs [--watch]).
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, watch, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "static", "src");
const dist = join(root, "static", "dist");
const require = createRequire(import.meta.url);

// Order matters: helpers first, then the components that use them, then Alpine itself.
const scripts = [
  "util.js",
  "live.js",
  "dashboard.js",
  "cards.js",
  "personas.js",
  "generate-form.js",
  "train-form.js",
  "progressive.js",
  "alpine.js",
];

function tailwindBin() {
  const pkgPath = require.resolve("@tailwindcss/cli/package.json");
  const pkg = JSON.parse(readFileSync(pkgPath, "utf8"));
  const bin = typeof pkg.bin === "string" ? pkg.bin : pkg.bin.tailwindcss;
  return join(dirname(pkgPath), bin);
}

function cssArgs(extra = []) {
  return [tailwindBin(), "-i", join(src, "app.css"), "-o", join(dist, "app.css"), ...extra];
}

// Two changes to Alpine's CSP build, made as it is bundled. If an Alpine upgrade rewrites
// either place, the build stops here instead of quietly dropping the change.
const ALPINE_PATCHES = [
  {
    // It reads every global once when it loads (to refuse them to expressions): ~1,000
    // getters, one long task of ~170 ms on a phone. Here the values are read 128 keys a
    // task and Alpine.globalsReady says when all are in; alpine.js starts Alpine then.
    // The keys are still taken when the module loads, as before. Of the globals it skips
    // because the browser reports reading them as a deprecated API, Chromium 156 adds
    // `window.fence` (Lighthouse: "Uses deprecated APIs · FencedFrame").
    find: [
      "Object.getOwnPropertyNames(globalThis).forEach((key) => {",
      '  if (key === "styleMedia" || key === "sharedStorage")',
      "    return;",
      "  let value;",
      "  try {",
      "    value = globalThis[key];",
      "  } catch {",
      "    return;",
      "  }",
      "  globals.add(value);",
      "});",
    ].join("\n"),
    replace: [
      "Alpine.globalsReady = new Promise((resolve) => {",
      "  const keys = Object.getOwnPropertyNames(globalThis);",
      '  const skipped = new Set(["styleMedia", "sharedStorage", "fence"]);',
      "  const slice = () => {",
      "    for (const key of keys.splice(0, 128)) {",
      "      if (skipped.has(key)) continue;",
      "      try {",
      "        globals.add(globalThis[key]);",
      "      } catch {}",
      "    }",
      "    if (keys.length > 0) setTimeout(slice, 0);",
      "    else resolve();",
      "  };",
      "  slice();",
      "});",
    ].join("\n"),
  },
  {
    // It tokenizes and parses an expression anew every time an effect evaluates it. The
    // parsed tree is never changed and its evaluator holds no state, so one parse per
    // expression string is kept.
    find: "function generateRuntimeFunction(expression) {",
    replace:
      "const parsedExpressions = new Map();\n" +
      "function generateRuntimeFunction(expression) {\n" +
      "  let parsed = parsedExpressions.get(expression);\n" +
      "  if (parsed === undefined) {\n" +
      "    parsed = parseRuntimeFunction(expression);\n" +
      "    parsedExpressions.set(expression, parsed);\n" +
      "  }\n" +
      "  return parsed;\n" +
      "}\n" +
      "function parseRuntimeFunction(expression) {",
  },
];
const alpinePatches = {
  name: "alpine-patches",
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: /@alpinejs[\\/]csp[\\/]dist[\\/]module\.esm\.js$/ }, (args) => {
      let contents = readFileSync(args.path, "utf8");
      for (const { find, replace } of ALPINE_PATCHES) {
        if (contents.split(find).length !== 2) {
          throw new Error(`${args.path}: no single "${find}"; see ALPINE_PATCHES`);
        }
        contents = contents.replace(find, replace);
      }
      return { contents, loader: "js" };
    });
  },
};

// The scripts, in order, and Alpine as one minified file with a source map back to the
// sources. Each of our files only touches window.MySpinBot and Alpine's events, so bundling
// them as side-effect imports keeps their order and their behaviour.
async function minifiedBundle(names, outfile) {
  await build({
    stdin: {
      contents: names.map((name) => `import "./${name}";`).join("\n"),
      resolveDir: join(src, "js"),
      sourcefile: "entry.js",
    },
    bundle: true,
    format: "iife",
    minify: true,
    target: "es2020",
    legalComments: "none",
    sourcemap: "linked",
    outfile,
    logLevel: "warning",
    plugins: [alpinePatches],
  });
}

async function buildScripts() {
  await minifiedBundle(scripts, join(dist, "app.js"));
}

async function copyStatic() {
  copyFileSync(join(src, "favicon.svg"), join(dist, "favicon.svg"));
  // The API docs page (/docs): Swagger UI served by the app itself, so it works offline.
  const docs = join(dist, "docs");
  mkdirSync(docs, { recursive: true });
  for (const name of ["swagger-ui.css", "swagger-ui-bundle.js"]) {
    copyFileSync(require.resolve(`swagger-ui-dist/${name}`), join(docs, name));
  }
  await minifiedBundle(["docs.js"], join(docs, "docs.js"));
}

async function buildOnce() {
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(dist, { recursive: true });
  await copyStatic();
  await buildScripts();
  const css = spawnSync(process.execPath, cssArgs(["--minify"]), { cwd: root, stdio: "inherit" });
  if (css.status !== 0) {
    console.error("static/build.mjs: the Tailwind build failed");
    process.exit(css.status ?? 1);
  }
  console.log(`static/build.mjs: assets written to ${dist}`);
}

async function watchMode() {
  mkdirSync(dist, { recursive: true });
  await copyStatic();
  await buildScripts();
  watch(join(src, "js"), () => {
    buildScripts().catch((err) => console.error(`static/build.mjs: ${err.message}`));
  });
  const css = spawn(process.execPath, cssArgs(["--watch"]), { cwd: root, stdio: "inherit" });
  css.on("exit", (code) => process.exit(code ?? 0));
}

if (process.argv.includes("--watch")) {
  await watchMode();
} else {
  await buildOnce();
}
