// Polls on the real pages: a moderator opens one, citizens answer it once (by keyboard and by
// mouse), everyone sees the counts live, the moderator closes it, the studio shows the results.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { closeAllBrowsers, createMeeting, launchPerson, startServer, textIn, visible, waitForJoined } from './helpers.mjs';

let server;

async function person(name, url) {
  const p = await launchPerson(name);
  await p.page.goto(url);
  await waitForJoined(p.page);
  return p;
}

function assertClean(p) {
  assert.deepEqual(p.dialogs, [], `${p.name}: no dialog may open`);
  assert.deepEqual(p.unexpectedProblems(), [], `${p.name}: page errors or CSP violations`);
  assert.deepEqual(p.foreign, [], `${p.name}: third-party requests`);
}

/** The poll (data-pid) in `list` whose text includes `question`. */
const pollIn = (page, list, question) => page.locator(`${list} [data-pid]`).filter({ hasText: question });

/** Waits until the poll's results show `want[i]` for option i (e.g. "1 stemme (50 %)"). */
async function counts(page, list, question, want) {
  await page.waitForFunction(
    ([sel, q, w]) => {
      const item = [...document.querySelectorAll(`${sel} [data-pid]`)].find((el) => el.textContent.includes(q));
      if (!item) return false;
      const rows = [...item.querySelectorAll('.poll-result')];
      return rows.length === w.length && rows.every((row, i) => row.querySelector('.poll-count')?.textContent === w[i]);
    },
    [list, question, want],
  );
}

/** Opens a poll from the moderator page and waits for the thank-you. */
async function openPoll(page, question, options) {
  await page.locator('#poll-question').fill(question);
  while ((await page.locator('#poll-options input').count()) < options.length) await page.locator('#poll-add').click();
  for (const [i, option] of options.entries()) await page.locator('#poll-options input').nth(i).fill(option);
  await page.locator('#poll-form button[type=submit]').click();
  await textIn(page, '#poll-form-msg', 'Afstemningen er startet');
  await visible(pollIn(page, '#polls', question));
}

before(async () => {
  server = await startServer();
});

after(async () => {
  await closeAllBrowsers();
  if (server) await server.stop();
});

describe('polls', () => {
  test('opened by the moderator, answered once by each citizen, closed, shown in the studio', async (t) => {
    const meeting = await createMeeting(server, 'Borgermøde om den gamle skolegrund');
    const [mod, alice, bob, studio] = await Promise.all([
      person('moderator', meeting.moderator),
      person('alice', meeting.viewer),
      person('bob', meeting.viewer),
      person('studio', meeting.studio),
    ]);
    t.after(() => Promise.all([mod, alice, bob, studio].map((p) => p.close())));

    // No poll yet: the citizens' and the studio's poll boxes are hidden.
    assert.equal(await alice.page.locator('#polls-card').isVisible(), false);
    assert.equal(await studio.page.locator('#poll-box').isVisible(), false);

    // The form: two option fields to start with; add up to six, remove down to two.
    const { page: mp } = mod;
    const optionInputs = mp.locator('#poll-options input');
    assert.equal(await optionInputs.count(), 2);
    assert.equal(await mp.locator('#poll-options [data-action="remove-option"]').first().isDisabled(), true);
    for (let i = 0; i < 4; i++) await mp.locator('#poll-add').click();
    assert.equal(await optionInputs.count(), 6);
    assert.equal(await mp.locator('#poll-add').isDisabled(), true);
    assert.equal(await mp.evaluate(() => document.activeElement?.id), await optionInputs.nth(5).getAttribute('id'));
    assert.equal(await mp.locator('label[for="' + (await optionInputs.nth(5).getAttribute('id')) + '"]').textContent(), 'Mulighed 6');
    await mp.locator('#poll-options [data-action="remove-option"]').nth(5).click();
    await mp.locator('#poll-options [data-action="remove-option"]').nth(4).click();
    await mp.locator('#poll-options [data-action="remove-option"]').nth(3).click();
    assert.equal(await optionInputs.count(), 3);
    assert.equal(await mp.locator('#poll-options [data-action="remove-option"]').nth(2).getAttribute('aria-label'), 'Fjern mulighed 3');

    // Two equal options are caught before sending.
    const question = 'Hvad skal den gamle skolegrund bruges til?';
    await mp.locator('#poll-question').fill(question);
    await optionInputs.nth(0).fill('Boliger');
    await optionInputs.nth(1).fill('Boliger');
    await mp.locator('#poll-form button[type=submit]').click();
    await textIn(mp, '#poll-form-msg', 'Skriv mindst to forskellige svarmuligheder');
    await openPoll(mp, question, ['Boliger', 'En park', 'En ny skole']);
    // The form is empty again, ready for the next poll.
    assert.equal(await mp.locator('#poll-question').inputValue(), '');
    assert.equal(await optionInputs.count(), 2);

    // Both citizens see it appear without a reload, announced politely, as a radio group.
    const alicePoll = await visible(pollIn(alice.page, '#polls', question));
    const bobPoll = await visible(pollIn(bob.page, '#polls', question));
    await textIn(alice.page, '#announcer', `Ny afstemning: ${question}`);
    assert.equal(await alicePoll.locator('fieldset legend').textContent(), question);
    assert.equal(await alicePoll.locator('input[type=radio]').count(), 3);
    assert.equal(await alicePoll.locator('.poll-results').count(), 0, 'no counts before voting');
    const pollId = Number(await alicePoll.getAttribute('data-pid'));

    // Alice votes by keyboard only: arrow to the second option, Tab to "Stem", Space.
    await alicePoll.locator('input[type=radio]').first().focus();
    await alice.page.keyboard.press('ArrowDown');
    assert.equal(await alicePoll.locator('input[type=radio]:checked').getAttribute('value'), '1');
    await alice.page.keyboard.press('Tab');
    assert.equal(await alice.page.evaluate(() => document.activeElement?.textContent), 'Stem');
    await alice.page.keyboard.press('Space');
    await textIn(alice.page, '#poll-msg', 'Tak for din stemme');
    // Focus moves from the vanished button to the poll's results, not to <body>.
    await alice.page.waitForFunction((id) => document.activeElement?.id === `poll-q-${id}`, pollId);

    // Bob votes by mouse for the first option.
    await bobPoll.getByText('Boliger', { exact: true }).click();
    await bobPoll.getByRole('button', { name: 'Stem' }).click();

    const oneEach = ['1 stemme (50 %)', '1 stemme (50 %)', '0 stemmer (0 %)'];
    await counts(alice.page, '#polls', question, oneEach);
    await counts(bob.page, '#polls', question, oneEach);
    await counts(mp, '#polls', question, oneEach);
    await counts(studio.page, '#poll', question, oneEach);
    await textIn(mp, '#polls', 'I alt 2 svar');

    // Each sees their own choice marked in words.
    assert.match(await alicePoll.locator('.poll-result.mine').textContent(), /En park.*Dit valg/);
    assert.match(await bobPoll.locator('.poll-result.mine').textContent(), /Boliger.*Dit valg/);
    assert.equal(await alicePoll.locator('.poll-result.mine').count(), 1);

    // Voting again is not possible in the page: results instead of the form, also after a reload.
    assert.equal(await alicePoll.locator('input[type=radio]').count(), 0);
    assert.equal(await alicePoll.locator('button').count(), 0);
    await alice.page.reload();
    await waitForJoined(alice.page);
    const again = await visible(pollIn(alice.page, '#polls', question));
    await counts(alice.page, '#polls', question, oneEach);
    assert.equal(await again.locator('input[type=radio]').count(), 0);
    assert.match(await again.locator('.poll-result.mine').textContent(), /En park/);
    // … and the server refuses a second answer sent anyway; the page has a text for the code.
    const refused = await alice.page.evaluate(async (id) => {
      try {
        await window.townhall.conn.send({ type: 'answer_poll', poll: id, option: 0 });
        return 'ack';
      } catch (e) {
        const { errorText } = await import('/assets/js/i18n.js');
        return `${e.code}: ${errorText(e.code)}`;
      }
    }, pollId);
    assert.equal(refused, 'already_answered: Du har allerede stemt i denne afstemning.');
    await counts(bob.page, '#polls', question, oneEach);

    // The studio shows the results only: nothing to vote with there.
    await textIn(studio.page, '#poll', question);
    await textIn(studio.page, '#poll', 'Åben');
    assert.equal(await studio.page.locator('#poll-box input, #poll-box button').count(), 0);

    // The moderator closes it; the citizens see it closed with the final results.
    await pollIn(mp, '#polls', question).locator('[data-action="close-poll"]').click();
    for (const p of [alice, bob]) {
      await textIn(p.page, '#polls', 'Afstemningen er lukket. Endeligt resultat:');
      await counts(p.page, '#polls', question, oneEach);
      assert.equal(await pollIn(p.page, '#polls', question).locator('.poll-badge').textContent(), 'Lukket');
    }
    await textIn(bob.page, '#announcer', `Afstemningen er lukket: ${question}`);
    await textIn(studio.page, '#poll', 'Lukket');
    await counts(studio.page, '#poll', question, oneEach);
    await textIn(mp, '#polls', 'Lukket');
    assert.equal(await pollIn(mp, '#polls', question).locator('[data-action="close-poll"]').count(), 0);

    // A second poll goes on top, open; the studio switches to it; in English on request.
    const next = 'Skal vi holde næste møde på en hverdag eller i weekenden?';
    const html = '<img src=x onerror=alert(1)>';
    await openPoll(mp, next, ['Hverdag', html]);
    await visible(pollIn(bob.page, '#polls', next));
    // Poll texts are text: what looks like HTML is shown as written and never parsed.
    await textIn(bob.page, '#polls', html);
    await textIn(studio.page, '#poll', html);
    for (const p of [mod, bob, studio]) assert.equal(await p.page.locator('main img').count(), 0, `${p.name}: an <img> was created`);
    assert.equal(await bob.page.locator('#polls [data-pid]').first().getAttribute('data-pid'), String(pollId + 1));
    await textIn(studio.page, '#poll', next);
    await bob.page.locator('[data-lang="en"]').click();
    await textIn(bob.page, '#polls-h', 'Poll');
    await textIn(bob.page, '#polls', 'The poll is closed. Final results:');
    await counts(bob.page, '#polls', question, ['1 vote (50%)', '1 vote (50%)', '0 votes (0%)']);
    assert.equal(await pollIn(bob.page, '#polls', next).getByRole('button', { name: 'Vote' }).count(), 1);
    await bob.page.locator('[data-lang="da"]').click();

    for (const p of [mod, alice, bob, studio]) assertClean(p);
  });
});
