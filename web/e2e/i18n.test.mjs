// The language switch: Danish by default, English on request, remembered, and back again.
// Interface texts change; what people wrote does not.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ask, closeAllBrowsers, createMeeting, launchPerson, startServer, textIn, waitForJoined } from './helpers.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await closeAllBrowsers();
  if (server) await server.stop();
});

const lang = (page) => page.evaluate(() => document.documentElement.lang);
const text = (page, sel) => page.locator(sel).first().textContent();

test('the viewer switches from Danish to English and back', async (t) => {
  const meeting = await createMeeting(server, 'Borgermøde om klimaplanen');
  const citizen = await launchPerson('citizen');
  t.after(() => citizen.close());
  const { page } = citizen;
  await page.goto(meeting.viewer);
  await waitForJoined(page);

  const question = 'Hvornår kommer der ladestandere ved biblioteket?';
  await ask(page, question);

  // Danish by default.
  assert.equal(await lang(page), 'da');
  assert.equal(await text(page, '#ask-h'), 'Stil et spørgsmål');
  assert.equal(await text(page, '#meeting-status'), 'Live');
  await textIn(page, '#mine', 'Afventer moderation');
  assert.equal(await page.locator('[data-lang="da"]').getAttribute('aria-pressed'), 'true');
  assert.match(await text(page, '#ask-count'), /tegn/);

  // English.
  await page.locator('[data-lang="en"]').click();
  await page.waitForFunction(() => document.documentElement.lang === 'en');
  assert.equal(await text(page, '#ask-h'), 'Ask a question');
  assert.equal(await text(page, '#chat-h'), 'Chat');
  assert.equal(await text(page, 'label[for="ask-anon"]'), 'Ask anonymously (your name is not shown to other citizens)');
  await textIn(page, '#mine', 'Awaiting moderation');
  await textIn(page, '#mine', question); // the question stays as written
  assert.match(await text(page, '#ask-count'), /characters/);
  assert.equal(await page.locator('[data-lang="en"]').getAttribute('aria-pressed'), 'true');
  assert.equal(await page.locator('.lang-switch').getAttribute('aria-label'), 'Language');
  assert.equal(await text(page, '.skip-link'), 'Skip to content');

  // Remembered across a reload.
  await page.reload();
  await waitForJoined(page);
  assert.equal(await lang(page), 'en');
  await textIn(page, '#ask-h', 'Ask a question');

  // An error code is translated too.
  await page.locator('#chat-text').fill('   ');
  await page.locator('#chat-form button[type=submit]').click();
  await textIn(page, '#chat-msg', 'The text is empty.');

  // And back to Danish.
  await page.locator('[data-lang="da"]').click();
  await page.waitForFunction(() => document.documentElement.lang === 'da');
  assert.equal(await text(page, '#ask-h'), 'Stil et spørgsmål');
  await textIn(page, '#mine', 'Afventer moderation');
  await textIn(page, '#mine', question);
  assert.equal(await page.locator('.lang-switch').getAttribute('aria-label'), 'Sprog');

  assert.deepEqual(citizen.unexpectedProblems(), []);
});
