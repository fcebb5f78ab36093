// The browser benchmark runs under the web client's vitest (which compiles its TypeScript and
// finds playwright-core and the wire codec in web-client/node_modules): from web-client/,
// `npx vitest run --config ../bench/browser/vitest.config.mts`. `./scripts/bench browser` does it.
// A plain object, not `defineConfig`: this folder has no node_modules of its own.
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

export default {
  root: here,
  test: {
    include: ["browser.bench.ts"],
    environment: "node",
    testTimeout: 30 * 60_000,
    hookTimeout: 120_000,
  },
};
