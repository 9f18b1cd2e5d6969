// Shared helpers for the browser tests: start the real townhall server, create and start a
// meeting through the organizer API, launch one Chromium per simulated person, and wait on
// conditions (never fixed sleeps).

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STARTUP_TIMEOUT_MS = 20_000;
export const WAIT_MS = 10_000;

/** Every process and temp dir made here, so that a crashed test still cleans up. */
const children = new Set();
const tempDirs = new Set();

function killAllSync() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}
process.on('exit', () => {
  killAllSync();
  for (const dir of tempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAllSync();
    process.exit(130);
  });
}

export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `townhall-e2e-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export function serverBinary() {
  const bin = process.env.TOWNHALL_BIN || path.join(REPO, 'target', 'debug', 'townhall');
  if (!fs.existsSync(bin)) {
    throw new Error(`townhall binary not found at ${bin}: build it (cargo build -p townhall-server) or set TOWNHALL_BIN`);
  }
  return bin;
}

/**
 * Starts `townhall serve --listen 127.0.0.1:PORT --data-dir DIR` and waits for its
 * "townhall listening on http://…" line. Pass `port` and `dataDir` to restart a stopped server
 * in its place.
 */
export async function startServer({
  port = 0, dataDir = tempDir('data'), adminToken = crypto.randomBytes(24).toString('hex'), extraArgs = [], env = {},
} = {}) {
  const bin = serverBinary();
  // Media on loopback with free ports, so servers of parallel runs never collide.
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir,
    '--media-bind-ip', '127.0.0.1', '--media-udp-port', '0', '--media-tcp-port', '0', ...extraArgs];
  let lastError;
  // A port just freed by a killed server can take a moment to be bindable again.
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await spawnServer(bin, args, { dataDir, adminToken, env });
    } catch (e) {
      lastError = e;
      if (!port || !/in use|AddrInUse|address already/i.test(e.message)) throw e;
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  }
  throw lastError;
}

function spawnServer(bin, args, { dataDir, adminToken, env }) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      env: { ...process.env, TOWNHALL_ADMIN_TOKEN: adminToken, RUST_BACKTRACE: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let out = '';
    let done = false;
    const output = () => out;
    const fail = (why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        child.kill('SIGKILL');
      } catch {
        // gone
      }
      reject(new Error(`${why}\n$ ${bin} ${args.join(' ')}\n--- server output ---\n${out}`));
    };
    const timer = setTimeout(() => fail(`townhall did not print its listening line within ${STARTUP_TIMEOUT_MS / 1000} s`), STARTUP_TIMEOUT_MS);
    const onData = (chunk) => {
      out += chunk.toString();
      if (out.length > 200_000) out = out.slice(-100_000);
      const m = /townhall listening on (http:\/\/[^\s]+)/.exec(out);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        const url = m[1].replace(/\/$/, '');
        const port = Number(new URL(url).port);
        resolve({
          url,
          port,
          dataDir,
          adminToken,
          proc: child,
          output,
          /** Stops the server; SIGKILL simulates a crash. Resolves when the process is gone. */
          stop: (signal = 'SIGTERM') => stopChild(child, signal),
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => {
      out += chunk.toString();
    });
    child.on('error', (e) => fail(`could not start townhall: ${e.message}`));
    child.on('exit', (code, signal) => {
      children.delete(child);
      fail(`townhall exited early (code ${code}, signal ${signal})`);
    });
  });
}

function stopChild(child, signal) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      children.delete(child);
      resolve();
      return;
    }
    const hard = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(hard);
      children.delete(child);
      resolve();
    });
    child.kill(signal);
  });
}

/** Calls the organizer API; throws with the status and body on an unexpected status. */
export async function api(server, method, route, body, { expect = [200, 201, 204] } = {}) {
  const res = await fetch(`${server.url}${route}`, {
    method,
    headers: {
      Authorization: `Bearer ${server.adminToken}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!expect.includes(res.status)) {
    throw new Error(`${method} ${route} → ${res.status} (expected ${expect.join('/')}): ${text}`);
  }
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** Absolute URL for a path or URL the server returned. */
export function abs(server, url) {
  return new URL(url, `${server.url}/`).href;
}

/** Creates a meeting (and starts it unless `start: false`); returns the API's answer. */
export async function createMeeting(server, title, { start = true } = {}) {
  const { json } = await api(server, 'POST', '/api/meetings', { title }, { expect: [201] });
  for (const key of ['id', 'viewer_url', 'moderator_url', 'studio_url']) {
    if (!json || !json[key]) throw new Error(`POST /api/meetings: missing "${key}" in ${JSON.stringify(json)}`);
  }
  if (start) await api(server, 'POST', `/api/meetings/${encodeURIComponent(json.id)}/start`, undefined, { expect: [200] });
  return {
    ...json,
    viewer: abs(server, json.viewer_url),
    moderator: abs(server, json.moderator_url),
    studio: abs(server, json.studio_url),
  };
}

const browsers = new Set();

/** Chromium flags for a real WebRTC peer on this machine: a fake camera and microphone (a
 *  moving test picture and a beep), permission prompts answered yes, loopback candidates. */
export const MEDIA_FLAGS = [
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns',
];

/**
 * One simulated person: a Chromium with its own profile (own cookies and storage) and one page.
 * The page records problems: uncaught errors, CSP violations, console errors, and dialogs.
 * `media: true` gives it the fake camera and microphone (MEDIA_FLAGS).
 */
export async function launchPerson(name = 'person', { viewport = { width: 1280, height: 900 }, media = false } = {}) {
  const context = await chromium.launchPersistentContext(tempDir(`chrome-${name}`), {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...(media ? MEDIA_FLAGS : []),
    ],
  });
  browsers.add(context);
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(WAIT_MS);
  const problems = [];
  const dialogs = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  // Requests to anywhere but the server under test would be third-party requests.
  const foreign = [];
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (!['127.0.0.1', 'localhost'].includes(u.hostname) && !['data:', 'blob:'].includes(u.protocol)) foreign.push(req.url());
  });
  return {
    name,
    context,
    page,
    problems,
    dialogs,
    foreign,
    /** Problems except the expected ones (e.g. a refused WebSocket while the server is down). */
    unexpectedProblems(allow = []) {
      return problems.filter((p) => !allow.some((re) => re.test(p)));
    },
    async close() {
      browsers.delete(context);
      await context.close().catch(() => {});
    },
  };
}

export async function closeAllBrowsers() {
  await Promise.all([...browsers].map((b) => b.close().catch(() => {})));
  browsers.clear();
}

/** Waits until the page's connection says it is open and the meeting view has arrived. */
export async function waitForJoined(page, timeout = WAIT_MS) {
  await page.waitForFunction(
    () => window.townhall && window.townhall.conn.state === 'open' && window.townhall.model.meeting !== null,
    null,
    { timeout },
  );
}

/** The list item of a question (data-qid) inside `listSelector` whose text includes `text`. */
export function questionItem(page, listSelector, text) {
  return page.locator(`${listSelector} [data-qid]`).filter({ hasText: text });
}

/** Waits until `locator` (first match) is visible. */
export async function visible(locator, timeout = WAIT_MS) {
  await locator.first().waitFor({ state: 'visible', timeout });
  return locator.first();
}

/** Waits until nothing matches `locator`. */
export async function gone(locator, timeout = WAIT_MS) {
  await locator.first().waitFor({ state: 'detached', timeout });
}

/** Waits until the page's text content of `selector` includes `text`. */
export async function textIn(page, selector, text, timeout = WAIT_MS) {
  await page.waitForFunction(
    ([sel, want]) => {
      const el = document.querySelector(sel);
      return !!el && el.textContent.includes(want);
    },
    [selector, text],
    { timeout },
  );
}

/** Asks a question from a viewer page and waits for the server's ack (the form's thank-you). */
export async function ask(page, text, { anonymous = false } = {}) {
  await page.locator('#ask-text').fill(text);
  await page.locator('#ask-anon').setChecked(anonymous);
  await page.locator('#ask-submit').click();
  await visible(questionItem(page, '#mine', text));
}

/** Clicks a moderator action (data-action) on the question whose text includes `text`. */
export async function moderate(page, listSelector, text, action) {
  const item = await visible(questionItem(page, listSelector, text));
  await item.locator(`[data-action="${action}"]`).click();
}

/** Reads the minified axe-core source once, for injection with page.evaluate (CSP blocks tags). */
let axeSource = null;
export function axeScript() {
  if (!axeSource) {
    const file = fileURLToPath(new URL('./node_modules/axe-core/axe.min.js', import.meta.url));
    axeSource = fs.readFileSync(file, 'utf8');
  }
  return axeSource;
}

/** Runs axe on the page (WCAG 2.0/2.1 A and AA and best practices); returns all violations. */
export async function runAxe(page) {
  const present = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!present) await page.evaluate(axeScript());
  const ok = await page.evaluate(() => typeof window.axe !== 'undefined' && typeof window.axe.run === 'function');
  if (!ok) throw new Error('axe-core could not be injected into the page');
  return page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      resultTypes: ['violations'],
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => ({ target: n.target.join(' '), summary: n.failureSummary })),
    }));
  });
}

export function describeViolations(vs) {
  return vs
    .map((v) => `[${v.impact}] ${v.id}: ${v.help}\n${v.nodes.map((n) => `    ${n.target}\n      ${(n.summary || '').replace(/\n/g, '\n      ')}`).join('\n')}`)
    .join('\n');
}

/** The viewer page's receive stats, per slot k: { video: inbound-rtp, audio: inbound-rtp } plus
 *  the slot's <video> size and whether its <audio> plays. */
export async function viewerStats(page) {
  return page.evaluate(async () => {
    const tv = window.townhall?.media;
    const pc = tv?.viewer?.pc;
    if (!pc) return null;
    const report = await pc.getStats();
    const byTrack = new Map();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp') byTrack.set(s.trackIdentifier, s);
    });
    const pick = (s) => s && {
      packetsReceived: s.packetsReceived || 0,
      framesDecoded: s.framesDecoded || 0,
      frameWidth: s.frameWidth || 0,
      totalSamplesReceived: s.totalSamplesReceived || 0,
      audioLevel: s.audioLevel || 0,
    };
    return tv.viewer.slots.map((tracks, k) => ({
      video: pick(byTrack.get(tracks.video.id)),
      audio: pick(byTrack.get(tracks.audio.id)),
      videoWidth: tv.slots[k].video.videoWidth,
      audioPaused: tv.slots[k].audio.paused,
      role: tv.slots[k].fig.dataset.role,
      caption: tv.slots[k].caption.textContent,
    }));
  });
}

/** Waits until `fn(page stats)` holds for the viewer page (polling its getStats). */
export async function waitForStats(page, fn, what, timeout = 20_000) {
  const start = Date.now();
  let last = null;
  while (Date.now() - start < timeout) {
    last = await viewerStats(page);
    if (last && fn(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}; last stats: ${JSON.stringify(last)}`);
}

/** Studio page: turns on the fake camera and microphone and goes live; waits for LIVE. */
export async function goLive(page, { label = '', timeout = 20_000 } = {}) {
  // The devices, the name on screen and the rest sit in the panel that folds away.
  if ((await page.locator('#bc-toggle').getAttribute('aria-expanded')) === 'false') await page.locator('#bc-toggle').click();
  if (await page.locator('#bc-devices').isVisible()) {
    await page.locator('#bc-devices').click();
    await page.waitForFunction(() => document.querySelector('#bc-camera').options.length > 0, null, { timeout });
  }
  if (label) await page.locator('#bc-label').fill(label);
  await page.locator('#bc-go').click();
  await page.waitForFunction(() => document.querySelector('#bc-state').dataset.state === 'live', null, { timeout });
}

/** Merges `{ [key]: value }` into loadtest/results/browser-media.json (gitignored), where the
 *  lead picks the figures up for docs/BENCHMARKS.md. */
export function recordResult(key, value) {
  const dir = path.join(REPO, 'loadtest', 'results');
  const file = path.join(dir, 'browser-media.json');
  fs.mkdirSync(dir, { recursive: true });
  let all = {};
  try {
    all = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    all = {};
  }
  all[key] = value;
  all.measured_at = new Date().toISOString();
  fs.writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
}
