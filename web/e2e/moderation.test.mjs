// The moderator's tools on the real pages, and what citizens see of them.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ask, closeAllBrowsers, createMeeting, gone, launchPerson, moderate, questionItem, startServer,
  textIn, visible, waitForJoined,
} from './helpers.mjs';

let server;
let meeting;
let citizen;
let other;
let mod;

const queueTexts = (page) =>
  page.locator('#queue [data-qid] .q-text').evaluateAll((els) => els.map((e) => e.textContent));

async function comment(page, text) {
  await page.locator('#chat-text').fill(text);
  await page.locator('#chat-form button[type=submit]').click();
}

before(async () => {
  server = await startServer();
  meeting = await createMeeting(server, 'Borgermøde om affald og genbrug');
  [citizen, other, mod] = await Promise.all([launchPerson('citizen'), launchPerson('other'), launchPerson('moderator')]);
  await Promise.all([
    citizen.page.goto(meeting.viewer).then(() => waitForJoined(citizen.page)),
    other.page.goto(meeting.viewer).then(() => waitForJoined(other.page)),
    mod.page.goto(meeting.moderator).then(() => waitForJoined(mod.page)),
  ]);
  await citizen.page.locator('#name-input').fill('Jens');
  await citizen.page.locator('#name-form button[type=submit]').click();
  await textIn(citizen.page, '#name-msg', 'Dit navn er gemt');
});

after(async () => {
  await closeAllBrowsers();
  if (server) await server.stop();
});

describe('moderation', () => {
  test('reject with a reason: the author sees the reason, nobody else sees the question', async () => {
    const text = 'Hvorfor er min skraldespand ikke tømt?';
    await ask(citizen.page, text);
    await moderate(mod.page, '#pending', text, 'reject');
    await mod.page.locator('#reject-dialog').waitFor({ state: 'visible' });
    await mod.page.locator('#reason-custom').check();
    await mod.page.locator('#reject-custom').fill('Kontakt venligst Teknik og Miljø direkte om din adresse.');
    await mod.page.locator('#reject-dialog button[type=submit]').click();
    await mod.page.locator('#reject-dialog').waitFor({ state: 'hidden' });
    await textIn(citizen.page, '#mine', 'Afvist: Kontakt venligst Teknik og Miljø direkte om din adresse.');
    await gone(questionItem(mod.page, '#pending', text));
    assert.equal(await other.page.locator('main').getByText(text).count(), 0);
  });

  test('anonymous questions show no name to other citizens; staff still see it', async () => {
    const text = 'Kan genbrugspladsen holde åbent om søndagen?';
    await ask(citizen.page, text, { anonymous: true });
    const pending = await visible(questionItem(mod.page, '#pending', text));
    assert.match(await pending.textContent(), /Jens \(anonym\)/);
    await moderate(mod.page, '#pending', text, 'approve');
    const shown = await visible(questionItem(other.page, '#questions', text));
    assert.match(await shown.textContent(), /Anonym/);
    assert.doesNotMatch(await shown.textContent(), /Jens/);
  });

  test('merge a duplicate: it disappears and its target stays', async () => {
    const a = 'Hvornår kommer madaffaldsspande til rækkehusene?';
    const b = 'Hvornår får rækkehusene spande til madaffald?';
    await ask(citizen.page, a);
    await ask(other.page, b);
    await moderate(mod.page, '#pending', a, 'approve');
    await moderate(mod.page, '#pending', b, 'approve');
    await visible(questionItem(other.page, '#questions', a));
    await visible(questionItem(citizen.page, '#questions', b));
    await moderate(mod.page, '#approved', b, 'merge');
    await mod.page.locator('#merge-dialog').waitFor({ state: 'visible' });
    const target = await mod.page.locator('#merge-into option').filter({ hasText: a }).getAttribute('value');
    await mod.page.locator('#merge-into').selectOption(target);
    await mod.page.locator('#merge-dialog button[type=submit]').click();
    await mod.page.locator('#merge-dialog').waitFor({ state: 'hidden' });
    await gone(questionItem(citizen.page, '#questions', b));
    // Its author is told which question theirs joined.
    await textIn(other.page, '#mine', `Slået sammen med: ${a}`);
    await visible(questionItem(citizen.page, '#questions', a));
  });

  test('the queue: add, reorder with the keyboard, remove', async () => {
    const texts = ['Spørgsmål et om genbrug?', 'Spørgsmål to om genbrug?', 'Spørgsmål tre om genbrug?'];
    for (const text of texts) {
      await ask(other.page, text);
      await moderate(mod.page, '#pending', text, 'approve');
      await moderate(mod.page, '#approved', text, 'queue');
      await visible(questionItem(mod.page, '#queue', text));
    }
    assert.deepEqual(await queueTexts(mod.page), texts);

    // Keyboard: focus "move up" on the last one and press Enter twice; focus stays on it.
    const up = questionItem(mod.page, '#queue', texts[2]).locator('[data-action="up"]');
    await up.focus();
    await mod.page.keyboard.press('Enter');
    await mod.page.waitForFunction(
      (want) => [...document.querySelectorAll('#queue [data-qid] .q-text')].map((e) => e.textContent).join('|') === want,
      [texts[0], texts[2], texts[1]].join('|'),
    );
    const focused = await mod.page.evaluate(() => document.activeElement?.dataset.action);
    assert.equal(focused, 'up', 'focus stays on the moved question\'s button');
    await mod.page.keyboard.press('Enter');
    await mod.page.waitForFunction(
      (want) => [...document.querySelectorAll('#queue [data-qid] .q-text')].map((e) => e.textContent).join('|') === want,
      [texts[2], texts[0], texts[1]].join('|'),
    );
    // The top one's "move up" is disabled (but keeps focus).
    assert.equal(await up.getAttribute('aria-disabled'), 'true');

    const lastDown = questionItem(mod.page, '#queue', texts[1]).locator('[data-action="down"]');
    assert.equal(await lastDown.getAttribute('aria-disabled'), 'true');
    await moderate(mod.page, '#queue', texts[0], 'unqueue');
    await visible(questionItem(mod.page, '#approved', texts[0]));
    assert.deepEqual(await queueTexts(mod.page), [texts[2], texts[1]]);
    // Citizens see queued questions marked.
    await textIn(other.page, '#questions', 'I køen');
  });

  test('comments: hide removes it from citizens, staff see it marked', async () => {
    await comment(citizen.page, 'Dette er en grim kommentar');
    await textIn(other.page, '#comments', 'Dette er en grim kommentar');
    const item = mod.page.locator('#comments li').filter({ hasText: 'Dette er en grim kommentar' });
    await item.locator('[data-action="hide"]').click();
    await textIn(mod.page, '#comments', 'Skjult for borgerne');
    await other.page.waitForFunction(() => !document.querySelector('#comments').textContent.includes('grim kommentar'));
    await citizen.page.waitForFunction(() => !document.querySelector('#comments').textContent.includes('grim kommentar'));
  });

  test('meeting settings reach citizens: announcement, slow mode, Q&A and chat closed', async () => {
    await mod.page.locator('#announce-text').fill('Pause til kl. 20.15');
    await mod.page.locator('#announce-form button[type=submit]').click();
    await textIn(other.page, '#announcement', 'Pause til kl. 20.15');
    await mod.page.locator('#announce-clear').click();
    await other.page.locator('#announcement').waitFor({ state: 'hidden' });

    // Slow mode counts from a citizen's last post (question or comment).
    await comment(other.page, 'Første kommentar');
    await textIn(mod.page, '#comments', 'Første kommentar');
    await mod.page.locator('#slow-mode').selectOption('30');
    await textIn(other.page, '#slow-note', '30');
    await comment(other.page, 'Anden kommentar for hurtigt');
    await textIn(other.page, '#chat-msg', 'Langsom tilstand er slået til');
    await mod.page.locator('#slow-mode').selectOption('0');
    await other.page.locator('#slow-note').waitFor({ state: 'hidden' });

    await mod.page.locator('#qa-toggle').click();
    await visible(other.page.locator('#qa-closed'));
    assert.equal(await other.page.locator('#ask-text').isDisabled(), true);
    await mod.page.locator('#qa-toggle').click();
    await other.page.locator('#qa-closed').waitFor({ state: 'hidden' });
    assert.equal(await other.page.locator('#ask-text').isDisabled(), false);

    await mod.page.locator('#chat-toggle').click();
    await textIn(other.page, '#chat-closed', 'Chatten er lukket');
    assert.equal(await other.page.locator('#chat-text').isDisabled(), true);
    await mod.page.locator('#chat-toggle').click();
    await other.page.locator('#chat-closed').waitFor({ state: 'hidden' });
  });

  test('mute, unmute and ban a participant', async () => {
    const row = mod.page.locator('#participants li').filter({ hasText: 'Jens' });
    await row.locator('[data-action="mute"]').click();
    await textIn(citizen.page, '#state-note', 'En moderator har gjort dig tavs');
    assert.equal(await citizen.page.locator('#ask-text').isDisabled(), true);
    await row.locator('[data-action="unmute"]').click();
    await citizen.page.locator('#state-note').waitFor({ state: 'hidden' });

    await row.locator('[data-action="ban"]').click();
    // Removing someone asks first; cancelling changes nothing.
    await mod.page.locator('#confirm-dialog').waitFor({ state: 'visible' });
    await mod.page.locator('#confirm-dialog .dialog-cancel').click();
    await mod.page.locator('#confirm-dialog').waitFor({ state: 'hidden' });
    await row.locator('[data-action="ban"]').click();
    await mod.page.locator('#confirm-ok').click();
    await textIn(citizen.page, '#fatal', 'Du er blevet fjernet fra mødet');
    // Removed for good: the page does not reconnect.
    await citizen.page.waitForFunction(() => window.townhall.conn.state === 'closed');
    await textIn(mod.page, '#participants', 'Fjernet');
    await row.locator('[data-action="unban"]').click();
    await textIn(mod.page, '#participants', 'Jens');
    await mod.page.waitForFunction(() => !document.querySelector('#participants').textContent.includes('Fjernet'));
  });

  test('links without or with a wrong secret are refused clearly', async (t) => {
    const stranger = await launchPerson('stranger');
    t.after(() => stranger.close());
    const base = meeting.moderator.replace(/#.*$/, '');
    await stranger.page.goto(`${base}#not-the-token`);
    await textIn(stranger.page, '#fatal', 'Linket er ugyldigt');
    await stranger.page.waitForFunction(() => window.townhall.conn.state === 'closed');
    assert.equal(await stranger.page.locator('#workspace').isVisible(), false);
    await stranger.page.goto(base);
    await textIn(stranger.page, '#fatal', 'Linket mangler sin hemmelige nøgle');
    await stranger.page.goto(meeting.studio.replace(/#.*$/, ''));
    await textIn(stranger.page, '#fatal', 'Linket mangler sin hemmelige nøgle');
    await stranger.page.goto(`${server.url}/m/findesikke`);
    await textIn(stranger.page, '#fatal', 'Mødet findes ikke');
  });

  test('no page had errors or CSP violations', () => {
    for (const p of [citizen, other, mod]) {
      assert.deepEqual(p.dialogs, []);
      assert.deepEqual(p.unexpectedProblems(), [], `${p.name}: page errors or CSP violations`);
    }
  });
});
