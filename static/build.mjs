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
  "generate-form.js",
  "train-form.js",
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

// Alpine's CSP build reads every global once when it loads and skips the few whose getter
// the browser reports as a deprecated API. Chromium 156 reports `window.fence` too (Lighthouse:
// "Uses deprecated APIs · FencedFrame"), so the bundle skips it as well. If an Alpine upgrade
// rewrites that line, the build stops here instead of quietly shipping the warning again.
const ALPINE_SKIP = 'if (key === "styleMedia" || key === "sharedStorage")';
const alpineSkipsFence = {
  name: "alpine-skips-fence",
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: /@alpinejs[\\/]csp[\\/]dist[\\/]module\.esm\.js$/ }, (args) => {
      const source = readFileSync(args.path, "utf8");
      if (!source.includes(ALPINE_SKIP)) {
        throw new Error(`${args.path}: Alpine's list of skipped globals moved; see alpineSkipsFence`);
      }
      const contents = source.replace(ALPINE_SKIP, `${ALPINE_SKIP.slice(0, -1)} || key === "fence")`);
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
    plugins: [alpineSkipsFence],
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
