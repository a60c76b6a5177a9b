import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Machine profiles measured by tests stay out of the user's cache, and are measured on the
    // tiny ladder (src/profile/measure.ts), shapes of the fixtures' size (children inherit this).
    env: { GPT2_CYCLES_CACHE: join(tmpdir(), "gpt2-cycles-test-cache"), GPT2_CYCLES_PROFILE_LADDER: "tiny" },
  },
});
