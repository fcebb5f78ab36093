import { defineConfig } from "vite";
import { fileURLToPath } from "node:url";

// The protocol's types are generated from the Rust crates (ts-rs) into their `bindings/`
// folders; the client imports them through these two aliases and never types them again.
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

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
  build: {
    target: "es2022",
    sourcemap: true,
  },
  server: {
    // `npm run dev` against a local `room-server --demo`.
    proxy: {
      "/api": "http://127.0.0.1:8080",
      "/ws": { target: "ws://127.0.0.1:8080", ws: true },
    },
  },
});
