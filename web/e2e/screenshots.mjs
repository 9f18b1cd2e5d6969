// Makes the screenshots in docs/screenshots/: every page, at 1280×900 and 360×740, in a meeting
// in full swing (a speaker live with Chromium's fake camera, questions in every state, votes,
// comments, a poll, a pinned announcement), plus the meeting after its end and the dead ends.
//
//   node web/e2e/screenshots.mjs            (after scripts/setup-browser-tests and cargo build)
//
// Not a test: it fails only when a page cannot be reached. The tests that check what these
// pictures show are in pages.test.mjs.

import fs from 'node:fs';
import path from 'node:path';
import {
  REPO, api, ask, closeAllBrowsers, createMeeting, goLive, launchPerson, startServer, textIn, waitForJoined,
} from './helpers.mjs';

const OUT = path.join(REPO, 'docs', 'screenshots');
const SIZES = { desktop: { width: 1280, height: 900 }, phone: { width: 360, height: 740 } };

const command = (page, cmd) => page.evaluate((c) => window.townhall.conn.send(c), cmd);

async function shoot(person, url, name, { prepare } = {}) {
  for (const [size, viewport] of Object.entries(SIZES)) {
    await person.page.setViewportSize(viewport);
    if (url) await person.page.goto(url);
    await person.page.evaluate(() => window.scrollTo(0, 0));
    if (prepare) await prepare(person.page, size);
    // Batched renders and fonts settle.
    await person.page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 300))));
    const file = path.join(OUT, `${name}-${size}.png`);
    await person.page.screenshot({ path: file });
    console.log(`  ${path.relative(REPO, file)}`);
  }
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const server = await startServer();
  try {
    const meeting = await createMeeting(server, 'Borgermøde: Fremtidens Hørsholm');
    const [mod, studio, citizen, other] = await Promise.all([
      launchPerson('shot-mod'),
      launchPerson('shot-studio', { media: true }),
      launchPerson('shot-citizen'),
      launchPerson('shot-other'),
    ]);
    for (const [p, url] of [[mod, meeting.moderator], [studio, meeting.studio], [citizen, meeting.viewer], [other, meeting.viewer]]) {
      await p.page.goto(url);
      await waitForJoined(p.page);
    }

    // The meeting in full swing.
    await citizen.page.locator('#name-input').fill('Birgitte Hansen');
    await citizen.page.locator('#name-save').click();
    await textIn(citizen.page, '#name-msg', 'Dit navn er gemt');
    const questions = [
      'Hvordan sikrer kommunen, at der er plads i daginstitutionerne i 2027?',
      'Kommer der flere busafgange om aftenen til Hørsholm station?',
      'Hvad koster den nye svømmehal, og hvem betaler for driften?',
      'Kan borgerne være med til at planlægge den nye park ved rådhuset?',
      'Hvornår starter vejarbejdet på Usserød Kongevej?',
    ];
    for (const q of questions) await ask(other.page, q, { anonymous: q.includes('busafgange') });
    await ask(citizen.page, 'Bliver der flere cykelstier langs kysten?');
    const ids = await other.page.evaluate(() => window.townhall.model.mine().map((q) => q.id).sort((a, b) => a - b));
    for (const id of ids.slice(0, 4)) await command(mod.page, { type: 'approve_question', question: id });
    await command(mod.page, { type: 'put_on_air', question: ids[0] });
    await command(mod.page, { type: 'queue_question', question: ids[1] });
    await command(mod.page, { type: 'queue_question', question: ids[2] });
    await command(other.page, { type: 'upvote', question: ids[3] });
    await command(mod.page, { type: 'pin_announcement', text: 'Velkommen! Der er pause kl. 20.15.' });
    await command(mod.page, { type: 'open_poll', question: 'Hvad skal den gamle skolegrund bruges til?', options: ['Boliger', 'En park', 'En ny skole'] });
    await command(other.page, { type: 'post_comment', text: 'Godt at mødet kan følges hjemmefra!' });
    await command(citizen.page, { type: 'post_comment', text: 'Kan man se optagelsen bagefter?' });

    // The speaker goes live with the fake camera, so the citizens see a picture.
    try {
      await goLive(studio.page, { label: 'Borgmester Morten Slotved' });
      await citizen.page.waitForFunction(() => document.querySelector('#stage')?.dataset.state === 'playing', null, { timeout: 20_000 });
    } catch (e) {
      console.warn(`  (no live picture: ${e.message.split('\n')[0]})`);
    }

    console.log('writing screenshots:');
    await shoot(citizen, null, 'viewer');
    await shoot(citizen, null, 'viewer-chat', {
      prepare: async (page, size) => {
        if (size === 'phone') await page.locator('#tab-chat').click();
        // Scrolled down to the chat: on a phone the picture stays on top.
        await page.locator('#chat-form').scrollIntoViewIfNeeded();
      },
    });
    await citizen.page.locator('#tab-questions').click().catch(() => {});
    // The presenter view as a speaker sees it once live: the broadcast details folded away.
    await studio.page.locator('#bc-toggle').click();
    await shoot(studio, null, 'studio');
    await shoot(mod, null, 'moderator');
    const admin = await launchPerson('shot-admin');
    await admin.page.goto(`${server.url}/admin`);
    await admin.page.locator('#token-input').fill(server.adminToken).catch(() => {});
    await admin.page.locator('#token-form button[type=submit]').click().catch(() => {});
    await admin.page.locator('#meetings-load').click().catch(() => {});
    await admin.page.locator('#meetings li').first().waitFor().catch(() => {});
    await shoot(admin, null, 'admin');
    await shoot(admin, `${server.url}/`, 'front');
    await shoot(admin, `${server.url}/m/findesikke`, 'not-found');

    // Removed from the meeting (after a reload, the page knows it at once).
    const banned = await launchPerson('shot-banned');
    await banned.page.goto(meeting.viewer);
    await waitForJoined(banned.page);
    await ask(banned.page, 'Spam spam spam');
    const pid = await banned.page.evaluate(() => window.townhall.model.participant);
    await command(mod.page, { type: 'ban_participant', participant: pid });
    await shoot(banned, meeting.viewer, 'removed', {
      prepare: (page) => page.waitForFunction(() => document.body.dataset.view === 'removed'),
    });

    // After the end.
    await api(server, 'POST', `/api/meetings/${meeting.id}/end`);
    await shoot(citizen, null, 'ended', { prepare: (page) => page.waitForFunction(() => document.body.dataset.view === 'ended') });
    await shoot(studio, null, 'studio-ended', { prepare: (page) => page.locator('#studio-ended').waitFor() });
  } finally {
    await closeAllBrowsers();
    await server.stop();
  }
}

await main();
