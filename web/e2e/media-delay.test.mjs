// Glass-to-glass delay through the relay: the studio page publishes a canvas on which it draws
// the wall-clock time as black and white blocks (robust to compression: 24 bits, each with an
// inverted twin as a check); a viewer page reads the blocks back from each frame it shows
// (requestVideoFrameCallback) and takes "now − drawn". Both Chromiums read the same system clock.
// Prints p50/p95/max and writes them to loadtest/results/browser-media.json.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  closeAllBrowsers, createMeeting, launchPerson, recordResult, startServer, waitForJoined,
} from './helpers.mjs';

const SAMPLE_MS = 8000;

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await closeAllBrowsers();
  if (server) await server.stop();
});

/** Runs in the studio page: draws the clock into a canvas and publishes it with WhipPublisher. */
async function publishClock() {
  const { WhipPublisher } = await import('/assets/js/whip.js');
  const COLS = 8;
  const ROWS = 6; // 24 bits + 24 inverted twins
  const canvas = document.createElement('canvas');
  canvas.width = 1280;
  canvas.height = 720;
  canvas.setAttribute('aria-hidden', 'true');
  document.body.appendChild(canvas);
  const ctx = canvas.getContext('2d');
  const cw = canvas.width / COLS;
  const ch = canvas.height / ROWS;
  const draw = () => {
    const t = Date.now() % 2 ** 24;
    for (let i = 0; i < 48; i++) {
      const bit = i < 24 ? (t >> i) & 1 : 1 - ((t >> (i - 24)) & 1);
      ctx.fillStyle = bit ? '#fff' : '#000';
      ctx.fillRect((i % COLS) * cw, Math.floor(i / COLS) * ch, cw, ch);
    }
  };
  draw();
  setInterval(draw, 5);
  const stream = canvas.captureStream(60);
  const meeting = decodeURIComponent(location.pathname.split('/')[2]);
  const token = decodeURIComponent(location.hash.slice(1));
  const pub = new WhipPublisher({ meeting, token, label: 'Ur', video: stream.getVideoTracks()[0] });
  window.clockPublisher = pub;
  await new Promise((resolve, reject) => {
    pub.addEventListener('state', (e) => {
      if (e.detail.state === 'live') resolve();
      if (e.detail.state === 'failed') reject(new Error(`publish failed: ${e.detail.error?.code}`));
    });
    pub.start();
  });
}

/** Runs in the viewer page: reads the clock from every frame slot 0 shows for `ms`. */
function readClock(ms) {
  const video = document.querySelector('#stage video[data-slot="0"]');
  const canvas = document.createElement('canvas');
  canvas.width = 160;
  canvas.height = 90;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const samples = [];
  let rejected = 0;
  const end = performance.now() + ms;
  return new Promise((resolve) => {
    const onFrame = () => {
      const now = Date.now() % 2 ** 24;
      ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
      const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      const bitAt = (i) => {
        const x = Math.floor(((i % 8) + 0.5) * (canvas.width / 8));
        const y = Math.floor((Math.floor(i / 8) + 0.5) * (canvas.height / 6));
        const o = (y * canvas.width + x) * 4;
        return (px[o] + px[o + 1] + px[o + 2]) / 3 > 128 ? 1 : 0;
      };
      let t = 0;
      let ok = true;
      for (let i = 0; i < 24; i++) {
        const b = bitAt(i);
        if (b === bitAt(i + 24)) ok = false;
        t |= b << i;
      }
      if (ok) samples.push((now - t + 2 ** 24) % 2 ** 24);
      else rejected++;
      if (performance.now() < end) video.requestVideoFrameCallback(onFrame);
      else resolve({ samples, rejected });
    };
    video.requestVideoFrameCallback(onFrame);
  });
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

test('glass-to-glass delay of a clock drawn in the studio and read on a viewer', async () => {
  const meeting = await createMeeting(server, 'Forsinkelsesmåling');
  const studio = await launchPerson('clock-studio', { media: true });
  await studio.page.goto(meeting.studio);
  await waitForJoined(studio.page);
  await studio.page.evaluate(publishClock);

  const viewer = await launchPerson('clock-viewer', { media: true });
  await viewer.page.goto(meeting.viewer);
  await waitForJoined(viewer.page);
  await viewer.page.waitForFunction(() => document.querySelector('#stage').dataset.state === 'playing', null, { timeout: 30_000 });
  // The full layer (a 1280×720 canvas: Chromium sends all three layers only from about 960
  // pixels wide); let the bandwidth estimate settle first.
  await viewer.page.locator('#tv-quality').selectOption('high');
  await viewer.page.waitForFunction(() => document.querySelector('#stage video[data-slot="0"]').videoWidth === 1280, null, { timeout: 30_000 });
  await viewer.page.evaluate(() => new Promise((r) => setTimeout(r, 2000)));

  const { samples, rejected } = await viewer.page.evaluate(readClock, SAMPLE_MS);
  const sorted = [...samples].sort((a, b) => a - b);
  const result = {
    frames: samples.length,
    unreadable_frames: rejected,
    p50_ms: pct(sorted, 50),
    p95_ms: pct(sorted, 95),
    max_ms: sorted[sorted.length - 1],
    min_ms: sorted[0],
    method: 'canvas clock (24 bits + inverted twins) published with WhipPublisher from Chromium, read per frame with requestVideoFrameCallback in a second Chromium via WHEP; 1280x720 canvas, layer f, loopback, debug server build',
  };
  console.log(`# glass-to-glass: p50 ${result.p50_ms} ms, p95 ${result.p95_ms} ms, max ${result.max_ms} ms over ${result.frames} frames (${rejected} unreadable)`);
  recordResult('glass_to_glass', result);

  assert.ok(samples.length >= 50, `read the clock from ${samples.length} frames (${rejected} unreadable)`);
  assert.ok(rejected <= samples.length / 4, `too many unreadable frames: ${rejected} of ${samples.length + rejected}`);
  assert.ok(result.min_ms >= 0 && result.max_ms < 10_000, `plausible delays: ${JSON.stringify(result)}`);
  assert.ok(result.p50_ms < 1000, `sub-second delay: p50 ${result.p50_ms} ms`);
  await studio.page.evaluate(() => window.clockPublisher.stop());
});
