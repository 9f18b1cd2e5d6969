// Losing the server: the offline banner shows; when a server is back on the same port and data
// dir, the page reconnects by itself (resuming with `since`), the banner goes, and a question
// approved while this viewer was away appears without a reload.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  ask, closeAllBrowsers, createMeeting, launchPerson, moderate, questionItem, startServer, textIn,
  visible, waitForJoined,
} from './helpers.mjs';

const BANNER = 'Forbindelse afbrudt – forbinder igen…';
const servers = [];

after(async () => {
  await closeAllBrowsers();
  for (const s of servers) await s.stop('SIGKILL');
});

async function bannerShown(page) {
  await page.waitForFunction((want) => {
    const b = document.querySelector('#conn-banner');
    return b && b.textContent === want && b.offsetHeight > 0;
  }, BANNER);
}

async function bannerGone(page) {
  await page.waitForFunction(() => {
    const b = document.querySelector('#conn-banner');
    return b && b.textContent === '' && b.offsetHeight === 0;
  }, null, { timeout: 20_000 });
}

test('the viewer survives a server restart without a reload', async (t) => {
  const first = await startServer();
  servers.push(first);
  const meeting = await createMeeting(first, 'Borgermøde om havnen');

  const [citizen, mod] = await Promise.all([launchPerson('citizen'), launchPerson('moderator')]);
  t.after(() => Promise.all([citizen.close(), mod.close()]));
  const hellos = [];
  citizen.page.on('websocket', (ws) =>
    ws.on('framesent', (f) => {
      const s = String(f.payload);
      if (s.includes('"hello"')) hellos.push(JSON.parse(s));
    }),
  );
  await citizen.page.goto(meeting.viewer);
  await mod.page.goto(meeting.moderator);
  await Promise.all([waitForJoined(citizen.page), waitForJoined(mod.page)]);
  // Marks this document: a reload would lose it.
  await citizen.page.evaluate(() => {
    window.__sameDocument = true;
  });

  const question = 'Bliver der badebro ved havnen til sommer?';
  await ask(citizen.page, question);
  await visible(questionItem(mod.page, '#pending', question));
  assert.equal(await citizen.page.locator('#conn-banner').textContent(), '');

  // The server dies.
  await first.stop('SIGKILL');
  await bannerShown(citizen.page);
  await bannerShown(mod.page);
  // The banner is announced politely and visible.
  assert.equal(await citizen.page.locator('#conn-banner').getAttribute('aria-live'), 'polite');

  // Keep this viewer off the network while a new server comes up and the moderator acts.
  await citizen.context.setOffline(true);
  const second = await startServer({ port: first.port, dataDir: first.dataDir, adminToken: first.adminToken });
  servers.push(second);
  await bannerGone(mod.page);
  await moderate(mod.page, '#pending', question, 'approve');
  await visible(questionItem(mod.page, '#approved', question));
  // The viewer was away the whole time: still offline, question not there yet.
  await bannerShown(citizen.page);
  assert.equal(await questionItem(citizen.page, '#questions', question).count(), 0);

  // Back online: the page reconnects by itself and catches up.
  await citizen.context.setOffline(false);
  await bannerGone(citizen.page);
  await visible(questionItem(citizen.page, '#questions', question));
  await textIn(citizen.page, '#mine', 'Godkendt');
  assert.equal(await citizen.page.evaluate(() => window.__sameDocument), true, 'the page was reloaded');

  // It resumed from where it was: the later hello carried the last offset it had seen.
  assert.ok(hellos.length >= 2, `expected a second hello, got ${JSON.stringify(hellos)}`);
  assert.equal(hellos[0].since, undefined);
  const resumed = hellos[hellos.length - 1];
  assert.equal(typeof resumed.since, 'number', `resume hello without since: ${JSON.stringify(resumed)}`);
  assert.ok(resumed.since > 0);

  // And it works: a vote goes through on the new connection.
  await questionItem(citizen.page, '#questions', question).locator('button.vote').click();
  await textIn(mod.page, '#approved', '1 stemme');

  const allow = [/WebSocket connection to .* failed/, /ERR_INTERNET_DISCONNECTED|ERR_CONNECTION_REFUSED/];
  assert.deepEqual(citizen.unexpectedProblems(allow), []);
  assert.deepEqual(mod.unexpectedProblems(allow), []);
});

test('a frozen server is noticed by the keep-alive, and the page recovers when it thaws', async (t) => {
  const server = await startServer();
  servers.push(server);
  const meeting = await createMeeting(server, 'Borgermøde om vejret');
  const viewer = await launchPerson('frozen');
  t.after(async () => {
    server.proc.kill('SIGCONT');
    await viewer.close();
  });
  const { page } = viewer;
  // The page's timers run on a clock this test controls, so 30 s of keep-alive take no time.
  await page.clock.install();
  await page.goto(meeting.viewer);
  await waitForJoined(page);

  // The process stops answering, but its sockets stay open: only the keep-alive can tell.
  server.proc.kill('SIGSTOP');
  await page.clock.runFor(21_000); // a ping goes out…
  assert.equal(await page.evaluate(() => window.townhall.conn.state), 'open');
  await page.clock.runFor(10_500); // …and no frame comes back within 10 s
  await bannerShown(page);

  server.proc.kill('SIGCONT');
  await page.clock.runFor(1_000); // the first reconnection attempt is due within 0.5 s
  await bannerGone(page);
  await waitForJoined(page);
  await textIn(page, '#meeting-title', 'Borgermøde om vejret');
});

test('resumed as a different participant, the page discards its view and joins afresh', async (t) => {
  const server = await startServer();
  servers.push(server);
  const meeting = await createMeeting(server, 'Borgermøde om cykelstier');
  const viewer = await launchPerson('forgetful');
  t.after(() => viewer.close());
  const { page } = viewer;
  await page.goto(meeting.viewer);
  await waitForJoined(page);
  const question = 'Hvornår bliver cykelstien langs kysten bredere?';
  await ask(page, question);
  const before = await page.evaluate(() => window.townhall.model.participant);

  // The session cookie is gone (cleared, expired): the next connection is someone else.
  await viewer.context.clearCookies();
  await page.evaluate(() => window.townhall.conn.ws.close());
  await page.waitForFunction((old) => {
    const { conn, model } = window.townhall;
    return conn.state === 'open' && model.participant && model.participant !== old && model.meeting !== null;
  }, before);
  // The pending question belonged to the old identity: not ours, not public.
  await visible(page.locator('#mine-empty'));
  assert.equal(await page.locator('main').getByText(question).count(), 0);
  assert.deepEqual(viewer.unexpectedProblems(), []);
});
