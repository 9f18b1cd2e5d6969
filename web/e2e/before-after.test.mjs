// Before and after a meeting (issue 12): the citizen's waiting page (date, agenda, countdown,
// calendar file, questions in advance or not) and the public record (answered in order,
// anonymous questions without author, rejections only when published), both axe-clean.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  api, ask, closeAllBrowsers, createMeeting, describeViolations, launchPerson, moderate, questionItem,
  runAxe, startServer, textIn, visible, waitForJoined,
} from './helpers.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await closeAllBrowsers();
  if (server) await server.stop();
});

async function axeClean(page, label) {
  const bad = (await runAxe(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.equal(bad.length, 0, `${label}: axe found serious/critical violations:\n${describeViolations(bad)}`);
}

test('the waiting page shows date, agenda, countdown and a calendar file', async (t) => {
  const startsAt = new Date(Date.now() + 2 * 24 * 3600_000 + 5.5 * 3600_000);
  const endsAt = new Date(startsAt.getTime() + 2 * 3600_000);
  const { json: m } = await api(server, 'POST', '/api/meetings', {
    title: 'Borgermøde om havnen',
    starts_at: startsAt.toISOString(),
    ends_at: endsAt.toISOString(),
    description: 'Kom og hør om planerne for havnen; og stil dine spørgsmål.',
    agenda: ['Velkomst ved borgmesteren', 'Planerne for havnen', 'Spørgsmål fra borgerne'],
    qa_before_start: false,
  }, { expect: [201] });
  const citizen = await launchPerson('waiting-citizen');
  t.after(() => citizen.close());
  const { page } = citizen;
  await page.goto(new URL(m.viewer_url, server.url).href);
  await waitForJoined(page);

  const waiting = await visible(page.locator('#waiting'));
  const year = String(startsAt.getFullYear());
  await textIn(page, '#wait-start', year);
  assert.equal(await page.locator('#wait-start').getAttribute('datetime'), m.schedule.starts_at);
  await textIn(page, '#wait-countdown', 'Begynder om 2 dage 5 timer');
  assert.deepEqual(
    await page.locator('#wait-agenda li').allTextContents(),
    ['Velkomst ved borgmesteren', 'Planerne for havnen', 'Spørgsmål fra borgerne'],
  );
  await textIn(page, '#wait-description', 'planerne for havnen');
  // Questions wait for the start here: the form is off and says so.
  await textIn(page, '#wait-qa', 'når mødet er begyndt');
  assert.equal(await page.locator('#ask-text').isDisabled(), true);
  await textIn(page, '#qa-closed', 'når mødet er begyndt');

  // The calendar file.
  const href = await page.locator('#wait-ics').getAttribute('href');
  assert.equal(href, `/m/${m.id}/meeting.ics`);
  const ics = await page.evaluate(async (url) => {
    const res = await fetch(url);
    return { type: res.headers.get('content-type'), text: await res.text() };
  }, href);
  assert.match(ics.type, /^text\/calendar/);
  assert.match(ics.text, /^BEGIN:VCALENDAR\r\n/);
  assert.match(ics.text, /\r\nSUMMARY:Borgermøde om havnen\r\n/);
  assert.match(ics.text, /DESCRIPTION:Kom og hør om planerne for havnen\\; og stil/);

  await axeClean(page, 'waiting page');

  // The organizer opens questions in advance: the page follows without a reload.
  await api(server, 'PUT', `/api/meetings/${m.id}/schedule`, {
    starts_at: startsAt.toISOString(),
    ends_at: endsAt.toISOString(),
    agenda: ['Velkomst'],
    qa_before_start: true,
  });
  await textIn(page, '#wait-qa', 'allerede nu sende spørgsmål');
  await page.waitForFunction(() => !document.querySelector('#ask-text').disabled);
  await ask(page, 'Hvornår bliver havnebadet åbnet?');

  // English, then the start: the waiting block goes away.
  await page.locator('[data-lang="en"]').click();
  await textIn(page, '#wait-countdown', 'Starts in 2 days');
  await textIn(page, '#waiting-h', 'The meeting has not started yet');
  await api(server, 'POST', `/api/meetings/${m.id}/start`);
  await waiting.waitFor({ state: 'hidden' });
  assert.deepEqual(citizen.unexpectedProblems(), []);
  assert.deepEqual(citizen.foreign, []);
});

test('the public record lists answered questions in order and never names anonymous authors', async (t) => {
  const m = await createMeeting(server, 'Borgermøde om skolen');
  const citizen = await launchPerson('record-citizen');
  const mod = await launchPerson('record-moderator');
  t.after(() => citizen.close());
  t.after(() => mod.close());
  await citizen.page.goto(m.viewer);
  await waitForJoined(citizen.page);
  await citizen.page.locator('#name-input').fill('Karen Ærø');
  await citizen.page.locator('#name-form button[type=submit]').click();
  await textIn(citizen.page, '#name-msg', 'Dit navn er gemt');
  const named = 'Hvornår står den nye skole klar?';
  const anonymous = 'Hvad koster skolen, og hvem betaler?';
  const rejected = 'Hvorfor ikke bare lukke skolen?!';
  await ask(citizen.page, named);
  await ask(citizen.page, anonymous, { anonymous: true });
  await ask(citizen.page, rejected);

  await mod.page.goto(m.moderator);
  await waitForJoined(mod.page);
  await moderate(mod.page, '#pending', anonymous, 'approve');
  await moderate(mod.page, '#pending', named, 'approve');
  await moderate(mod.page, '#pending', rejected, 'reject');
  await mod.page.locator('#reject-dialog').waitFor({ state: 'visible' });
  await mod.page.locator('#reason-custom').check();
  await mod.page.locator('#reject-custom').fill('Spørgsmålet handler ikke om skoleprojektet.');
  await mod.page.locator('#reject-dialog button[type=submit]').click();
  await mod.page.locator('#reject-dialog').waitFor({ state: 'hidden' });
  await textIn(citizen.page, '#mine', 'Afvist: Spørgsmålet handler ikke om skoleprojektet.');
  // The anonymous one is answered first, then the named one; the named one is on air at the end.
  await moderate(mod.page, '#approved', anonymous, 'onair');
  await visible(questionItem(mod.page, '#on-air', anonymous));
  await moderate(mod.page, '#approved', named, 'onair');
  await visible(questionItem(mod.page, '#on-air', named));
  await api(server, 'POST', `/api/meetings/${m.id}/end`);

  const reader = await launchPerson('record-reader');
  t.after(() => reader.close());
  const { page } = reader;
  // Not published yet: the page says so.
  await page.goto(`${server.url}/m/${m.id}/record`);
  await textIn(page, '#fatal', 'ikke offentliggjort');

  await api(server, 'POST', `/api/meetings/${m.id}/publish`, { record: true, rejections: true });
  await page.reload();
  await visible(page.locator('#record-body'));
  await textIn(page, '#record-title', 'Borgermøde om skolen');
  const items = page.locator('#record-questions [data-qid]');
  const texts = await items.locator('.record-q-text').allTextContents();
  assert.deepEqual(texts, [anonymous, named, rejected]);
  const first = items.nth(0);
  await textIn(page, '#record-questions', 'Anonym');
  assert.equal(await first.locator('.record-q-author').textContent(), 'Anonym');
  assert.ok(!(await first.textContent()).includes('Karen'), 'an anonymous question never shows its author');
  assert.match(await first.locator('.record-q-outcome').textContent(), /^Besvaret kl\. \d\d[.:]\d\d$/);
  assert.match(await items.nth(1).locator('.record-q-outcome').textContent(), /På skærmen, da mødet sluttede/);
  assert.equal(await items.nth(1).locator('.record-q-author').textContent(), 'Af Karen Ærø');
  assert.match(await items.nth(2).textContent(), /Afvist: Spørgsmålet handler ikke om skoleprojektet\./);
  await axeClean(page, 'record page');

  // Printable: the page's chrome is left out on paper.
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.locator('.site-header').isVisible(), false);
  assert.equal(await page.locator('#record-print').isVisible(), false);
  assert.equal(await page.locator('#record-questions').isVisible(), true);
  await page.emulateMedia({ media: 'screen' });

  // English.
  await page.locator('[data-lang="en"]').click();
  await textIn(page, '#record-questions', 'Anonymous');
  await textIn(page, '#record-questions', 'On screen when the meeting ended');
  assert.deepEqual(reader.unexpectedProblems([/404/]), []);
  assert.deepEqual(reader.foreign, []);
});
