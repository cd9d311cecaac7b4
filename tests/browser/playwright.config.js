// The portal's browser journeys: Debian's Chromium (never a browser Playwright downloads),
// one worker so the journeys run in order against one demo region (a later journey may rely on
// what an earlier one did, e.g. the privacy officer reviews the break-glass made before).
// tools/browser.sh starts the demo and sets PORTAL_URL, DEMO_DATA and SCREENSHOTS.
const { defineConfig } = require('@playwright/test');

module.exports = defineConfig({
  testDir: './journeys',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  // Bounds, not timings under test: a journey that hangs fails instead of holding CI.
  timeout: 90_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  outputDir: process.env.PLAYWRIGHT_OUTPUT || '../../target/browser-results',
  use: {
    baseURL: process.env.PORTAL_URL,
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    launchOptions: {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    },
    // A missing element fails its step in seconds, not at the end of the journey's bound.
    actionTimeout: 15_000,
    navigationTimeout: 30_000,
    screenshot: 'only-on-failure',
    trace: 'off',
  },
});
