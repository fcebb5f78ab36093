import { defineConfig, mergeConfig } from "vitest/config";
import base from "./vite.config.ts";

// Unit tests of the client's state logic: plain functions, no browser.
export default mergeConfig(
  base,
  defineConfig({
    test: {
      include: ["test/**/*.test.ts"],
      environment: "node",
    },
  }),
);
