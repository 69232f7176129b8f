// End-to-end test of the web page of `clip serve`: builds an index of fixture images with the
// tiny model, starts the server on a free port, drives Debian's chromium (headless) through a
// text search, a search by example and the duplicates panel, checks that thumbnails with scores
// appear, saves screenshots, and stops the server with SIGTERM (it must exit 0).
//
// Usage: node search_page_test.js [path/to/clip] [screenshot folder]
'use strict';

const { chromium } = require('playwright-core');
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '../..');
const clipExe = path.resolve(process.argv[2] || path.join(root, 'build/clip'));
const shotDir = path.resolve(process.argv[3] || path.join(root, 'build/browser'));
const model = path.join(root, 'tests/data/fixtures/models/tiny-vit-f16.safetensors');
const images = ['astronaut_q95.jpg', 'chelsea.png', 'coffee_q90_444.jpg', 'rocket.jpg', 'horse_rgba.png',
  'motorcycle_200x500.png', 'webp_lossy.webp', 'camera_gray.png'];

function fail(message) {
  throw new Error(message);
}

// Starts `clip serve` and resolves with its URL once it prints the port.
function startServer(indexDir) {
  const child = spawn(clipExe, ['serve', '--index', indexDir, '--port', '0', '--threads', '4'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const url = new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const m = log.match(/listening on (http:\/\/[^\s]+)/);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`clip serve exited early (${code}):\n${log}`)));
  });
  return { child, url, log: () => log };
}

async function waitReady(url) {
  for (let i = 0; i < 600; i++) {
    try {
      const res = await fetch(url + 'healthz');
      if (res.status === 200) return;
    } catch (e) { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  fail('the server did not become ready within 60 s');
}

// Waits until the results grid shows `min` figures whose thumbnails have loaded.
async function waitForThumbnails(page, min) {
  await page.waitForFunction((n) => {
    const imgs = [...document.querySelectorAll('#results figure img')];
    return imgs.length >= n && imgs.every((img) => img.complete && img.naturalWidth > 0);
  }, min, { timeout: 30000 });
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip_browser_'));
  let server = null;
  let browser = null;
  try {
    fs.mkdirSync(path.join(tmp, 'images'));
    for (const name of images) fs.copyFileSync(path.join(root, 'tests/data/images/files', name), path.join(tmp, 'images', name));
    // A byte copy: the duplicates panel must show it with its original.
    fs.copyFileSync(path.join(root, 'tests/data/images/files/chelsea.png'), path.join(tmp, 'images', 'zz-chelsea-copy.png'));
    execFileSync(clipExe, ['index', 'build', '--model', model, '--images', path.join(tmp, 'images'),
      '--out', path.join(tmp, 'index'), '--threads', '2'], { stdio: 'inherit' });

    server = startServer(path.join(tmp, 'index'));
    const url = await server.url;
    await waitReady(url);

    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
    const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(url);
    await page.waitForFunction(() => document.querySelector('#status').textContent.startsWith('ready'), null,
      { timeout: 30000 });

    // A text query: every thumbnail loads and carries a score.
    await page.fill('#query', 'a cat sitting on a sofa');
    await page.selectOption('#k', '8');
    await page.press('#query', 'Enter');
    await waitForThumbnails(page, images.length);
    const scores = await page.$$eval('#results .score', (els) => els.map((e) => Number(e.textContent)));
    if (scores.length !== images.length) fail(`expected ${images.length} results, found ${scores.length}`);
    if (scores.some((s) => !Number.isFinite(s) || s < -1.001 || s > 1.001)) fail(`scores out of range: ${scores}`);
    for (let i = 1; i < scores.length; i++) if (scores[i] > scores[i - 1]) fail(`scores not sorted: ${scores}`);
    fs.mkdirSync(shotDir, { recursive: true });
    await page.screenshot({ path: path.join(shotDir, 'search_text.png'), fullPage: true });

    // Search by example (the file input the drop zone also feeds): the image finds itself first.
    await page.setInputFiles('#file', path.join(root, 'tests/data/images/files/rocket.jpg'));
    await page.waitForFunction(() => document.querySelector('#message').textContent.includes('rocket.jpg') &&
      document.querySelector('#message').textContent.includes('results'), null, { timeout: 30000 });
    await waitForThumbnails(page, 1);
    const first = await page.$eval('#results figure .name', (e) => e.textContent);
    if (first !== 'rocket.jpg') fail(`search by example: first result is ${first}, expected rocket.jpg`);
    await page.screenshot({ path: path.join(shotDir, 'search_example.png'), fullPage: true });

    // The duplicates panel: the copy and its original form one group of copies, thumbnails loaded.
    await page.click('#duplicates-panel summary');
    await page.click('#duplicates-form button');
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll('#duplicates .group.exact img')];
      return imgs.length >= 2 && imgs.every((img) => img.complete && img.naturalWidth > 0);
    }, null, { timeout: 30000 });
    const groups = await page.$$eval('#duplicates .group.exact', (els) =>
      els.map((g) => [...g.querySelectorAll('.name')].map((n) => n.textContent).sort().join(',')));
    if (groups.length !== 1 || groups[0] !== 'chelsea.png,zz-chelsea-copy.png')
      fail(`duplicates: expected one group of copies {chelsea.png, zz-chelsea-copy.png}, found ${JSON.stringify(groups)}`);
    await page.screenshot({ path: path.join(shotDir, 'duplicates.png'), fullPage: true });
    if (pageErrors.length) fail(`JavaScript errors on the page: ${pageErrors.join('; ')}`);

    // Clean shutdown on SIGTERM.
    const exited = new Promise((resolve) => server.child.on('exit', (code, signal) => resolve({ code, signal })));
    server.child.kill('SIGTERM');
    const { code, signal } = await exited;
    if (code !== 0) fail(`clip serve exited with ${code} (${signal}) on SIGTERM:\n${server.log()}`);
    server = null;
    console.log(`browser test passed: ${scores.length} results, screenshots in ${shotDir}`);
  } finally {
    if (browser) await browser.close();
    if (server) server.child.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`browser test FAILED: ${e.message}`);
  process.exit(1);
});
