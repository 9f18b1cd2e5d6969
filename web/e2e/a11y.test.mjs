// axe-core scans of every page in a realistic state: no violation of impact "serious" or
// "critical" is allowed (WCAG 2.0/2.1 A and AA rules plus axe's best practices).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ask, closeAllBrowsers, createMeeting, describeViolations, launchPerson, moderate, questionItem,
  runAxe, startServer, textIn, visible, waitForJoined,
} from './helpers.mjs';

let server;
let meeting;
let citizen;
let mod;
let studio;

const Q = {
  onAir: 'Hvordan sikrer kommunen, at der er plads i daginstitutionerne i 2027?',
  queued: 'Kommer der flere busafgange om aftenen til Hørsholm station?',
  approved: 'Hvad koster den nye svømmehal, og hvem betaler for driften?',
  pending: 'Kan borgerne være med til at planlægge den nye park ved rådhuset?',
  rejected: 'Hvorfor svarer kommunen aldrig på mine mails om min carport?',
  answered: 'Hvornår starter vejarbejdet på Usserød Kongevej?',
};

/** Polls in every state the citizen can see: closed with results, open and answered (live
 *  results), and open and not yet answered (the radio group). */
const POLLS = {
  closed: { question: 'Hvordan har du hørt om mødet i aften?', options: ['Avisen', 'Kommunens hjemmeside', 'Facebook'] },
  unanswered: { question: 'Hvilken dag passer bedst til næste møde?', options: ['Tirsdag', 'Onsdag', 'Torsdag'] },
  answered: { question: 'Hvad skal den gamle skolegrund bruges til?', options: ['Boliger', 'En park'] },
};

async function openPoll(page, { question, options }) {
  await page.locator('#poll-question').fill(question);
  while ((await page.locator('#poll-options input').count()) < options.length) await page.locator('#poll-add').click();
  for (const [i, option] of options.entries()) await page.locator('#poll-options input').nth(i).fill(option);
  await page.locator('#poll-form button[type=submit]').click();
  await visible(page.locator('#polls [data-pid]').filter({ hasText: question }));
}

async function answerPoll(page, question, option) {
  const poll = await visible(page.locator('#polls [data-pid]').filter({ hasText: question }));
  await poll.getByText(option, { exact: true }).click();
  await poll.locator('button[type=submit]').click();
  await visible(poll.locator('.poll-result.mine'));
}

function serious(violations) {
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

async function check(page, label) {
  const violations = await runAxe(page);
  const bad = serious(violations);
  assert.equal(bad.length, 0, `${label}: axe found serious/critical violations:\n${describeViolations(bad)}`);
  return violations;
}

before(async () => {
  server = await startServer();
  meeting = await createMeeting(server, 'Borgermøde: Fremtidens Hørsholm');
  [citizen, mod, studio] = await Promise.all([launchPerson('citizen'), launchPerson('moderator'), launchPerson('studio')]);
  await Promise.all([
    citizen.page.goto(meeting.viewer).then(() => waitForJoined(citizen.page)),
    mod.page.goto(meeting.moderator).then(() => waitForJoined(mod.page)),
    studio.page.goto(meeting.studio).then(() => waitForJoined(studio.page)),
  ]);

  // A meeting in full swing: questions in every state, votes, comments, an announcement.
  await citizen.page.locator('#name-input').fill('Birgitte Hansen');
  await citizen.page.locator('#name-form button[type=submit]').click();
  await textIn(citizen.page, '#name-msg', 'Dit navn er gemt');
  for (const text of [Q.answered, Q.onAir, Q.queued, Q.approved, Q.rejected]) {
    await ask(citizen.page, text, { anonymous: text === Q.queued });
    await moderate(mod.page, '#pending', text, 'approve');
    await visible(questionItem(mod.page, '#approved', text));
  }
  await ask(citizen.page, Q.pending);
  await visible(questionItem(mod.page, '#pending', Q.pending));

  await moderate(mod.page, '#approved', Q.answered, 'onair');
  await visible(questionItem(mod.page, '#on-air', Q.answered));
  await moderate(mod.page, '#on-air', Q.answered, 'answered');
  // Answered questions are in the closed "history" disclosure: attached, not visible.
  await questionItem(mod.page, '#history', Q.answered).waitFor({ state: 'attached' });
  await moderate(mod.page, '#approved', Q.queued, 'queue');
  await visible(questionItem(mod.page, '#queue', Q.queued));
  await moderate(mod.page, '#approved', Q.onAir, 'onair');
  await visible(questionItem(mod.page, '#on-air', Q.onAir));

  await moderate(mod.page, '#approved', Q.rejected, 'reject');
  await mod.page.locator('#reject-dialog').waitFor({ state: 'visible' });
  await mod.page.locator('#reject-dialog button[type=submit]').click();
  await mod.page.locator('#reject-dialog').waitFor({ state: 'hidden' });
  await textIn(citizen.page, '#mine', 'Afvist');

  await questionItem(citizen.page, '#questions', Q.approved).locator('button.vote').click();
  await textIn(mod.page, '#approved', '1 stemme');

  for (const c of ['Godt at vi kan følge med hjemmefra!', 'Hvornår kommer præsentationen om skolerne?']) {
    await citizen.page.locator('#chat-text').fill(c);
    await citizen.page.locator('#chat-form button[type=submit]').click();
    await textIn(mod.page, '#comments', c);
  }
  await mod.page.locator('#announce-text').fill('Velkommen! Mødet optages og kan ses bagefter på kommunens hjemmeside.');
  await mod.page.locator('#announce-form button[type=submit]').click();
  await textIn(citizen.page, '#announcement', 'Velkommen!');
  await mod.page.locator('#slow-mode').selectOption('10');
  await textIn(citizen.page, '#slow-note', '10');
  await textIn(studio.page, '#on-air', Q.onAir);

  await openPoll(mod.page, POLLS.closed);
  await answerPoll(citizen.page, POLLS.closed.question, 'Kommunens hjemmeside');
  await mod.page.locator('#polls [data-pid]').filter({ hasText: POLLS.closed.question }).locator('[data-action="close-poll"]').click();
  await textIn(citizen.page, '#polls', 'Afstemningen er lukket');
  await openPoll(mod.page, POLLS.unanswered);
  await openPoll(mod.page, POLLS.answered);
  await answerPoll(citizen.page, POLLS.answered.question, 'En park');
  await textIn(mod.page, '#polls', '1 stemme (100 %)');
  await textIn(studio.page, '#poll', POLLS.answered.question);
  await visible(citizen.page.locator('#polls input[type=radio]'));
});

after(async () => {
  await closeAllBrowsers();
  if (server) await server.stop();
});

describe('accessibility (axe-core)', () => {
  test('viewer page, desktop and 360 px phone, in Danish and English', async () => {
    await check(citizen.page, 'viewer');
    await citizen.page.setViewportSize({ width: 360, height: 740 });
    await check(citizen.page, 'viewer at 360 px');
    const overflow = await citizen.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `viewer scrolls sideways at 360 px by ${overflow}px`);
    await citizen.page.locator('[data-lang="en"]').click();
    await check(citizen.page, 'viewer in English');
    await citizen.page.locator('[data-lang="da"]').click();
    await citizen.page.setViewportSize({ width: 1280, height: 900 });
  });

  test('moderator page, also with the reject dialog open', async () => {
    await check(mod.page, 'moderate');
    await moderate(mod.page, '#pending', Q.pending, 'reject');
    await mod.page.locator('#reject-dialog').waitFor({ state: 'visible' });
    await check(mod.page, 'moderate with reject dialog');
    await mod.page.keyboard.press('Escape');
    await mod.page.locator('#reject-dialog').waitFor({ state: 'hidden' });
    await mod.page.setViewportSize({ width: 360, height: 740 });
    await check(mod.page, 'moderate at 360 px');
    const overflow = await mod.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `moderate scrolls sideways at 360 px by ${overflow}px`);
    await mod.page.setViewportSize({ width: 1280, height: 900 });
  });

  test('studio page', async () => {
    await check(studio.page, 'studio');
  });

  test('admin page with meetings and fresh links', async (t) => {
    const admin = await launchPerson('admin');
    t.after(() => admin.close());
    await admin.page.goto(`${server.url}/admin`);
    await check(admin.page, 'admin (empty)');
    await admin.page.locator('#token-input').fill(server.adminToken);
    await admin.page.locator('#token-form button[type=submit]').click();
    await visible(admin.page.locator('#meetings [data-mid]'));
    await admin.page.locator('#create-title').fill('Borgermøde om trafik');
    await admin.page.locator('#create-form button[type=submit]').click();
    await visible(admin.page.locator('#link-moderator'));
    await textIn(admin.page, '#meetings', 'Borgermøde om trafik');
    await admin.page.locator('#meetings [data-action="delete"]').first().click();
    await visible(admin.page.locator('#meetings [data-action="confirm-delete"]'));
    await check(admin.page, 'admin');
    assert.deepEqual(admin.unexpectedProblems(), []);
  });

  test('landing page', async (t) => {
    const visitor = await launchPerson('visitor');
    t.after(() => visitor.close());
    await visitor.page.goto(`${server.url}/`);
    await visible(visitor.page.locator('a[href="/admin"]'));
    await check(visitor.page, 'index');
    assert.deepEqual(visitor.unexpectedProblems(), []);
  });

  test('keyboard only: skip link, the reject dialog opens, closes with Escape, focus returns', async () => {
    const { page } = mod;
    await page.reload();
    await waitForJoined(page);
    await visible(questionItem(page, '#pending', Q.pending));
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip-link');
    const box = await page.locator('.skip-link').boundingBox();
    assert.ok(box && box.y >= 0 && box.height > 0, 'the focused skip link is visible');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');

    // The card's secondary actions are in its menu: open it from the keyboard.
    const summary = questionItem(page, '#pending', Q.pending).locator('details.q-menu > summary');
    await summary.focus();
    await page.keyboard.press('Enter');
    const reject = questionItem(page, '#pending', Q.pending).locator('[data-action="reject"]');
    await reject.focus();
    await page.keyboard.press('Enter');
    await page.locator('#reject-dialog').waitFor({ state: 'visible' });
    assert.equal(await page.evaluate(() => document.querySelector('#reject-dialog').contains(document.activeElement)), true);
    // Tab walks through the dialog's controls: reasons, own reason, reject, cancel.
    const stops = [];
    for (let i = 0; i < 3; i++) {
      await page.keyboard.press('Tab');
      stops.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.className));
    }
    assert.deepEqual(stops, ['reject-custom', 'danger', 'dialog-cancel']);
    await page.keyboard.press('Escape');
    await page.locator('#reject-dialog').waitFor({ state: 'hidden' });
    await page.waitForFunction(() => document.activeElement?.dataset.action === 'reject');
  });

  test('no page had errors or CSP violations', () => {
    for (const p of [citizen, mod, studio]) {
      assert.deepEqual(p.unexpectedProblems(), [], `${p.name}: page errors or CSP violations`);
      assert.deepEqual(p.foreign, [], `${p.name}: third-party requests`);
    }
  });
});
