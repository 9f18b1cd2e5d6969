// Several nodes on one Redis, in the browser: the moderator on node A, citizens on nodes B and
// C, and the whole Q&A flow between them; and a node whose Redis goes away, where the page says
// it is reconnecting, the command is refused (never silently lost) and all recovers by itself.
//
// The flow uses the shared Redis at REDIS_URL under a key prefix of its own; the outage test a
// private redis-server (AOF on) on a free port. Skipped, saying so, without Redis, unless
// TOWNHALL_REQUIRE_REDIS=1.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  ask, closeAllBrowsers, createMeeting, launchPerson, moderate, questionItem, startServer,
  tempDir, textIn, visible, waitForJoined, WAIT_MS,
} from './helpers.mjs';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const REQUIRED = process.env.TOWNHALL_REQUIRE_REDIS === '1';
const servers = [];
const redises = [];

after(async () => {
  await closeAllBrowsers();
  await Promise.all(servers.map((s) => s.stop()));
  for (const r of redises) r.kill('SIGKILL');
});

function answers(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.setTimeout(1000);
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      resolve(String(d).startsWith('+PONG'));
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** Whether the shared Redis answers; a failure instead of a skip when it is required. */
async function sharedRedisAnswers(t) {
  const { hostname, port } = new URL(REDIS_URL);
  if (await answers(Number(port || 6379), hostname)) return true;
  assert.ok(!REQUIRED, `TOWNHALL_REQUIRE_REDIS=1 but redis at ${REDIS_URL} does not answer`);
  t.skip(`redis at ${REDIS_URL} does not answer`);
  return false;
}

async function until(what, check, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A redis-server of this test's own, with AOF fsynced on every write in a temp dir. */
async function ownRedis() {
  if (spawnSync('redis-server', ['--version']).error) return null;
  const port = await freePort();
  const dir = tempDir('redis');
  const start = async () => {
    const proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '',
      '--logfile', path.join(dir, 'redis.log')], { stdio: 'ignore' });
    redises.push(proc);
    await until('redis-server answers', () => answers(port));
    return proc;
  };
  let proc = await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    kill: () => new Promise((resolve) => {
      proc.once('exit', resolve);
      proc.kill('SIGKILL');
    }),
    restart: async () => {
      proc = await start();
    },
  };
}

/** `n` nodes on one Redis URL and prefix, with one admin token: one deployment. */
async function nodes(n, redisUrl) {
  const adminToken = crypto.randomBytes(24).toString('hex');
  const prefix = `th-e2e-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const started = [];
  for (let i = 0; i < n; i++) {
    const s = await startServer({
      adminToken,
      extraArgs: ['--redis', redisUrl, '--redis-prefix', prefix, '--node-id', `node-${'abc'[i]}`],
    });
    servers.push(s);
    started.push(s);
  }
  return started;
}

/** The same link on another node. */
function on(node, url) {
  const u = new URL(url);
  const n = new URL(node.url);
  u.host = n.host;
  return u.href;
}

async function person(name, url) {
  const p = await launchPerson(name);
  await p.page.goto(url);
  await waitForJoined(p.page);
  return p;
}

function assertClean(p, allow = []) {
  assert.deepEqual(p.dialogs, [], `${p.name}: no dialog may open`);
  assert.deepEqual(p.unexpectedProblems(allow), [], `${p.name}: page errors or CSP violations`);
  assert.deepEqual(p.foreign, [], `${p.name}: third-party requests`);
}

async function comment(page, text) {
  await page.locator('#chat-text').fill(text);
  await page.locator('#chat-form button[type=submit]').click();
}

describe('three nodes on one Redis', () => {
  test('moderator on node A, citizens on B and C, studio on B: the whole Q&A flow', async (t) => {
    if (!(await sharedRedisAnswers(t))) return;
    const [a, b, c] = await nodes(3, REDIS_URL);
    const meeting = await createMeeting(a, 'Borgermøde på tre servere');
    const [alice, bob, mod, studio] = await Promise.all([
      person('alice@B', on(b, meeting.viewer)),
      person('bob@C', on(c, meeting.viewer)),
      person('moderator@A', meeting.moderator),
      person('studio@B', on(b, meeting.studio)),
    ]);
    t.after(() => Promise.all([alice, bob, mod, studio].map((p) => p.close())));
    await textIn(bob.page, '#meeting-title', 'Borgermøde på tre servere');

    const text = 'Kommer der cykelsti langs Usserød Kongevej før skolen åbner?';
    await ask(alice.page, text);
    await textIn(alice.page, '#mine', 'Afventer moderation');
    // Asked on B, pending on A's moderator page; not shown to the citizen on C.
    await visible(questionItem(mod.page, '#pending', text));
    assert.equal(await questionItem(bob.page, '#questions', text).count(), 0);

    await moderate(mod.page, '#pending', text, 'approve');
    await visible(questionItem(bob.page, '#questions', text));
    await textIn(alice.page, '#mine', 'Godkendt');

    // A vote on C reaches the moderator on A; a comment on C reaches the citizen on B.
    await questionItem(bob.page, '#questions', text).locator('button.vote').click();
    await textIn(mod.page, '#approved', '1 stemme');
    await comment(bob.page, 'Godt spørgsmål fra node C');
    await textIn(alice.page, '#comments', 'Godt spørgsmål fra node C');
    await textIn(mod.page, '#comments', 'Godt spørgsmål fra node C');

    // On air from A: the studio on B and both citizens see it; answered from the studio.
    await moderate(mod.page, '#approved', text, 'onair');
    await textIn(studio.page, '#on-air .studio-text', text);
    await textIn(bob.page, '#on-air', text);
    await textIn(alice.page, '#mine', 'På skærmen nu');
    await studio.page.locator('#on-air [data-action="answered"]').click();
    await textIn(alice.page, '#mine', 'Besvaret');
    await textIn(bob.page, '#answered', text);
    await textIn(mod.page, '#history', text);

    for (const p of [alice, bob, mod, studio]) assertClean(p);
  });
});

describe('a node whose Redis goes away', () => {
  test('the page says it is reconnecting, the comment is refused, and all recovers', async (t) => {
    const redis = await ownRedis();
    if (!redis) {
      assert.ok(!REQUIRED, 'TOWNHALL_REQUIRE_REDIS=1 but redis-server is not installed');
      t.skip('no redis-server binary');
      return;
    }
    const [a, b] = await nodes(2, redis.url);
    const meeting = await createMeeting(a, 'Møde med en genstart');
    const [carol, dave] = await Promise.all([
      person('carol@A', meeting.viewer),
      person('dave@B', on(b, meeting.viewer)),
    ]);
    t.after(() => Promise.all([carol, dave].map((p) => p.close())));
    await comment(carol.page, 'Før afbrydelsen');
    await textIn(dave.page, '#comments', 'Før afbrydelsen');
    const banner = carol.page.locator('#conn-banner');
    assert.equal(await banner.textContent(), '');

    await redis.kill();
    await comment(carol.page, 'Under afbrydelsen');
    await textIn(carol.page, '#conn-banner', 'Mødet er midlertidigt afbrudt');
    assert.equal(await carol.page.evaluate(() => document.body.dataset.conn), 'reconnecting');
    // Refused with a visible, retryable message; the text stays for another try.
    await textIn(carol.page, '#chat-msg', 'midlertidigt utilgængelig');
    assert.equal(await carol.page.locator('#chat-text').inputValue(), 'Under afbrydelsen');

    await redis.restart();
    // The node notices by itself (readyz); trying again then works and the banner goes away.
    await until('node A is ready again', async () => (await fetch(`${a.url}/readyz`)).status === 200, 20_000);
    await carol.page.locator('#chat-form button[type=submit]').click();
    await textIn(carol.page, '#comments', 'Under afbrydelsen');
    await until('the banner is gone', async () => (await banner.textContent()) === '');
    assert.equal(await carol.page.evaluate(() => document.body.dataset.conn), 'open');
    await textIn(dave.page, '#comments', 'Under afbrydelsen');
    // The video part asks the node for the stage while Redis is away: 503, retried by itself.
    for (const p of [carol, dave]) assertClean(p, [/status of 503 \(Service Unavailable\)/]);
  });
});
