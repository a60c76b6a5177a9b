// The README's picture of the playground mid-run: npx tsx scripts/playground-screenshot.ts OUT.png
// Starts the playground, opens it in headless Chromium with random weights, and captures the
// page once a dozen tokens have streamed in (the live stages, ops and per-token charts).
import { writeFileSync } from "node:fs";
import { Chromium, findChromium } from "./chromium.ts";
import { startPlayground } from "./playground-process.ts";

const out = process.argv[2];
if (out === undefined) {
  process.stderr.write("usage: npx tsx scripts/playground-screenshot.ts OUT.png\n");
  process.exit(2);
}
const chromium = findChromium();
if (chromium === undefined) {
  process.stderr.write("playground-screenshot: no Chromium on PATH (apt-get install chromium)\n");
  process.exit(1);
}
const { url, child: server } = await startPlayground();
const browser = await Chromium.launch(chromium);
try {
  const page = await browser.open(`${url}?weights=random&prompt=${encodeURIComponent("The meaning of life is")}&maxNewTokens=200&threads=2&autorun=1`, 1200, 2000);
  await page.waitFor(`document.querySelectorAll("#per-token svg").length > 0 && document.getElementById("generated").textContent.length > 60`, 120_000);
  writeFileSync(out, await page.screenshot());
  process.stdout.write(`wrote ${out}\n`);
} finally {
  await browser.close();
  server.kill();
}
