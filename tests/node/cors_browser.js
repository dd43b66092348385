// Opens a page in headless Chromium (Debian's, driven by playwright-core) and reports what
// the page's cross-origin fetch saw. Usage: node cors_browser.js PAGE_URL
// Prints one JSON line: the page's result ({ ok, status, body, exposed } or { error }).
const { chromium } = require('playwright-core');

async function main() {
  const pageUrl = process.argv[2];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(pageUrl, { timeout: 20000 });
    const handle = await page.waitForFunction(() => window.corsResult, null, { timeout: 20000 });
    console.log(JSON.stringify(await handle.jsonValue()));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
