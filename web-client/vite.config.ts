import { defineConfig, type Plugin } from "vite";
import { readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

// The protocol's types are generated from the Rust crates (ts-rs) into their `bindings/`
// folders; the client imports them through these two aliases and never types them again.
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * Fails the build when what it wrote would tell a visitor more than the client: a source map
 * (the source itself, with the build machine's paths), or any file naming the checkout's
 * absolute path or the builder's home folder. Everything in dist/ is served to anyone.
 */
export function nothingOfTheBuildMachine(): Plugin {
  const checkout = path.resolve(here(".."));
  const home = homedir();
  // A home of `/` or `/root` is too short to tell from ordinary text; the checkout still is.
  const forbidden = [checkout, ...(home.length > 5 ? [home] : [])];
  let outDir = "";
  return {
    name: "nothing-of-the-build-machine",
    apply: "build",
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    writeBundle() {
      const found: string[] = [];
      const visit = (dir: string) => {
        for (const entry of readdirSync(dir, { withFileTypes: true })) {
          const file = path.join(dir, entry.name);
          if (entry.isDirectory()) visit(file);
          else if (entry.name.endsWith(".map")) found.push(`${file}: a source map`);
          else {
            const text = readFileSync(file, "latin1");
            for (const p of forbidden) if (text.includes(p)) found.push(`${file}: names ${p}`);
          }
        }
      };
      visit(outDir);
      if (found.length > 0) this.error(`the build would serve what the build machine holds:\n${found.join("\n")}`);
    },
  };
}

export default defineConfig({
  resolve: {
    alias: {
      "@protocol": here("../protocol/bindings"),
      "@gate": here("../room-server/bindings"),
    },
  },
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  plugins: [nothingOfTheBuildMachine()],
  build: {
    target: "es2022",
    // No source maps, not even `hidden` ones: dist/ is what the node serves and what gets
    // copied into images, so a map there is one misconfiguration away from being public, and
    // nobody here uploads maps to an error tracker. Debug with `npm run dev`, which serves the
    // source as it is.
    sourcemap: false,
  },
  server: {
    // `npm run dev` against a local `room-server --demo`.
    proxy: {
      "/api": "http://127.0.0.1:8080",
      "/ws": { target: "ws://127.0.0.1:8080", ws: true },
    },
  },
});
