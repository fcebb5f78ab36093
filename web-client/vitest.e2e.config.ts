import { defineConfig } from "vitest/config";

// End-to-end: a real room-server and Debian's Chromium driven by playwright-core.
export default defineConfig({
  test: {
    include: ["e2e/**/*.e2e.ts"],
    environment: "node",
    testTimeout: 240_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
