// The main flow on the real pages, and user text that looks like HTML staying text.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ask, closeAllBrowsers, createMeeting, gone, launchPerson, moderate, questionItem, startServer,
  textIn, visible, waitForJoined,
} from './helpers.mjs';

let server;
const people = [];

async function person(name, url) {
  const p = await launchPerson(name);
  people.push(p);
  // Record every WebSocket frame the page receives, to prove what never reached it.
  p.received = [];
  p.page.on('websocket', (ws) => ws.on('framereceived', (f) => p.received.push(String(f.payload))));
  await p.page.goto(url);
  await waitForJoined(p.page);
  return p;
}

function assertClean(p) {
  assert.deepEqual(p.dialogs, [], `${p.name}: no dialog may open`);
  assert.deepEqual(p.unexpectedProblems(), [], `${p.name}: page errors or CSP violations`);
  assert.deepEqual(p.foreign, [], `${p.name}: third-party requests`);
}

before(async () => {
  server = await startServer();
});

after(async () => {
  await closeAllBrowsers();
  if (server) await server.stop();
});

describe('a question from a citizen to the studio', () => {
  test('pending questions stay private; approved and put on air, everyone sees it', async (t) => {
    const meeting = await createMeeting(server, 'Borgermøde om den nye skole');
    const [alice, bob, mod, studio] = await Promise.all([
      person('alice', meeting.viewer),
      person('bob', meeting.viewer),
      person('moderator', meeting.moderator),
      person('studio', meeting.studio),
    ]);
    t.after(() => Promise.all([alice, bob, mod, studio].map((p) => p.close())));

    await textIn(alice.page, '#meeting-title', 'Borgermøde om den nye skole');
    await textIn(alice.page, '#meeting-status', 'Live');

    const text = 'Hvornår åbner den nye skole i Rungsted, og hvordan bliver skolevejen sikret?';
    await ask(alice.page, text);
    await textIn(alice.page, '#mine', 'Afventer moderation');

    // The moderator sees it as pending: the server has fanned it out by now.
    await visible(questionItem(mod.page, '#pending', text));
    // … but the other citizen does not, on the page or on the wire.
    assert.equal(await questionItem(bob.page, '#questions', text).count(), 0);
    assert.equal(await bob.page.locator('main').getByText(text).count(), 0);
    assert.ok(!bob.received.some((f) => f.includes('Rungsted')), 'a pending question reached another citizen');
    assert.equal(await questionItem(studio.page, '#queue', text).count(), 0);

    // Approve: now every citizen sees it in the list of questions.
    await moderate(mod.page, '#pending', text, 'approve');
    await visible(questionItem(mod.page, '#approved', text));
    await visible(questionItem(bob.page, '#questions', text));
    await textIn(alice.page, '#mine', 'Godkendt');

    // Bob upvotes it; the toggle is pressed and the tally reaches the moderator.
    const vote = questionItem(bob.page, '#questions', text).locator('button.vote');
    await vote.click();
    await bob.page.waitForFunction(() => document.querySelector('#questions button.vote')?.getAttribute('aria-pressed') === 'true');
    await textIn(mod.page, '#approved', '1 stemme');

    // Put it on air: the studio and both citizens see it highlighted.
    await moderate(mod.page, '#approved', text, 'onair');
    await textIn(studio.page, '#on-air .studio-text', text);
    await textIn(bob.page, '#on-air', text);
    await textIn(alice.page, '#on-air', text);
    await textIn(alice.page, '#mine', 'På skærmen nu');
    await gone(questionItem(bob.page, '#questions', text));

    // The speaker marks it answered from the studio.
    await studio.page.locator('#on-air [data-action="answered"]').click();
    await textIn(studio.page, '#on-air', 'Intet spørgsmål på skærmen');
    await textIn(alice.page, '#mine', 'Besvaret');
    await textIn(bob.page, '#answered', text);

    for (const p of [alice, bob, mod, studio]) assertClean(p);
  });

  test('question text that looks like HTML is shown as text and never runs', async (t) => {
    const meeting = await createMeeting(server, 'Møde med mærkelig tekst');
    const [carol, dave, mod] = await Promise.all([
      person('carol', meeting.viewer),
      person('dave', meeting.viewer),
      person('moderator2', meeting.moderator),
    ]);
    t.after(() => Promise.all([carol, dave, mod].map((p) => p.close())));

    const evil = '<img src=x onerror=alert(1)>';
    await ask(carol.page, evil);

    const pending = await visible(questionItem(mod.page, '#pending', evil));
    assert.equal(await pending.locator('.q-text').textContent(), evil);
    assert.equal(await mod.page.locator('main img').count(), 0, 'an <img> was created on the moderator page');

    await moderate(mod.page, '#pending', evil, 'approve');
    const shown = await visible(questionItem(dave.page, '#questions', evil));
    assert.equal(await shown.locator('.q-text').textContent(), evil);
    assert.equal(await dave.page.locator('#questions img').count(), 0);
    assert.equal(await dave.page.locator('main img').count(), 0);
    assert.equal(await carol.page.locator('main img').count(), 0);

    // The same for a comment and a display name.
    await dave.page.locator('#name-input').fill('<b>Dave</b>');
    await dave.page.locator('#name-form button[type=submit]').click();
    await textIn(dave.page, '#name-msg', 'Dit navn er gemt');
    await dave.page.locator('#chat-text').fill('<script>alert(2)</script>');
    await dave.page.locator('#chat-form button[type=submit]').click();
    await textIn(carol.page, '#comments', '<script>alert(2)</script>');
    await textIn(carol.page, '#comments', '<b>Dave</b>');
    assert.equal(await carol.page.locator('#comments b, #comments script').count(), 0);

    for (const p of [carol, dave, mod]) assertClean(p);
  });
});
