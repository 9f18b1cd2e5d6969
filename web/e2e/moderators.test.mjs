// Several moderators on one meeting (issue 15): claims, bulk decisions, keyboard shortcuts,
// one-click merge from a suggestion, the word filter, undoing a hide; and the compact page
// (issue 13): one main action per card, the rest in a menu, axe clean in these states.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ask, closeAllBrowsers, createMeeting, describeViolations, launchPerson, moderate, questionItem,
  runAxe, startServer, textIn, visible, waitForJoined,
} from './helpers.mjs';

let server;
let meeting;
let citizen;
let other;
let mette;
let ole;

async function comment(page, text) {
  await page.locator('#chat-text').fill(text);
  await page.locator('#chat-form button[type=submit]').click();
}

async function setName(page, name) {
  await page.locator('#mod-name').fill(name);
  await page.locator('#name-form button[type=submit]').click();
}

before(async () => {
  server = await startServer();
  meeting = await createMeeting(server, 'Borgermøde om trafik i Hørsholm');
  [citizen, other, mette, ole] = await Promise.all(
    ['citizen', 'other', 'mette', 'ole'].map((n) => launchPerson(n, { viewport: { width: 1600, height: 900 } })),
  );
  await Promise.all([
    citizen.page.goto(meeting.viewer).then(() => waitForJoined(citizen.page)),
    other.page.goto(meeting.viewer).then(() => waitForJoined(other.page)),
    mette.page.goto(meeting.moderator).then(() => waitForJoined(mette.page)),
    ole.page.goto(meeting.moderator).then(() => waitForJoined(ole.page)),
  ]);
  await setName(mette.page, 'Mette');
  await setName(ole.page, 'Ole');
});

after(async () => {
  await closeAllBrowsers();
  await server?.stop();
});

describe('several moderators', () => {
  test('a claimed question shows who holds it, and only they can decide it', async () => {
    const text = 'Hvorfor er lyskurven ved Rungstedvej så lang om morgenen?';
    await ask(citizen.page, text);
    await moderate(mette.page, '#pending', text, 'claim');
    const atOle = questionItem(ole.page, '#pending', text);
    await visible(atOle.locator('.tag.claim').filter({ hasText: 'Mette har taget det' }));
    await textIn(mette.page, '#pending', 'Du har taget det');
    assert.equal(await atOle.locator('[data-action="approve"]').getAttribute('aria-disabled'), 'true');
    await moderate(mette.page, '#pending', text, 'approve');
    await visible(questionItem(ole.page, '#approved', text));
  });

  test('bulk approve leaves out what another moderator claimed', async () => {
    const texts = [
      'Kommer der flere ladestandere til elbiler?',
      'Hvornår får Ådalsvej ny asfalt?',
      'Hvorfor holder bussen ikke længere ved Folehavevej?',
    ];
    for (const text of texts) await ask(citizen.page, text);
    for (const text of texts) await visible(questionItem(ole.page, '#pending', text));
    await moderate(mette.page, '#pending', texts[2], 'claim');
    await textIn(ole.page, '#pending', 'Mette har taget det');
    await ole.page.locator('#bulk-all').click();
    await textIn(ole.page, '#bulk-approve', '(2)');
    await ole.page.locator('#bulk-approve').click();
    await visible(questionItem(ole.page, '#approved', texts[0]));
    await visible(questionItem(ole.page, '#approved', texts[1]));
    await visible(questionItem(ole.page, '#pending', texts[2]));
    await textIn(other.page, '#questions', texts[0]);

    // Bulk reject with one reason, from the other moderator's selection.
    await questionItem(mette.page, '#pending', texts[2]).locator('[data-action="select"]').check();
    await mette.page.locator('#bulk-reject').click();
    await mette.page.locator('#reject-dialog').waitFor({ state: 'visible' });
    await mette.page.locator('#reject-dialog button[type=submit]').click();
    await mette.page.locator('#reject-dialog').waitFor({ state: 'hidden' });
    await textIn(citizen.page, '#mine', 'Afvist');
  });

  test('keyboard: J/K move between cards, A approves the focused one', async () => {
    const texts = ['Kommer der en rundkørsel ved Folehavevej?', 'Hvornår bliver vejbelysningen tændt igen?'];
    for (const text of texts) await ask(citizen.page, text);
    for (const text of texts) await visible(questionItem(ole.page, '#pending', text));
    const { page } = ole;
    await questionItem(page, '#pending', texts[0]).focus();
    await page.keyboard.press('j');
    const focused = () => page.evaluate(() => document.activeElement?.closest('li.mod-q')?.querySelector('.q-text')?.textContent);
    assert.equal(await focused(), texts[1]);
    await page.keyboard.press('k');
    assert.equal(await focused(), texts[0]);
    await page.keyboard.press('a');
    await visible(questionItem(page, '#approved', texts[0]));
    // Focus moves on to the card that took its place, not to <body>.
    await page.waitForFunction(() => document.activeElement?.closest('li.mod-q'));
    await page.keyboard.press('x');
    await textIn(page, '#bulk-approve', '(1)');
    await page.keyboard.press('x');
    await textIn(page, '#bulk-approve', '(0)');
  });

  test('a duplicate gets a merge suggestion; one click merges it and its author is told where', async () => {
    const original = 'Hvornår bliver cykelstien langs Usserød Kongevej færdig?';
    const duplicate = 'Hvornår er cykelstien på Usserød Kongevej klar?';
    await ask(other.page, original);
    await moderate(mette.page, '#pending', original, 'approve');
    await visible(questionItem(mette.page, '#approved', original));
    await ask(citizen.page, duplicate);
    const card = questionItem(mette.page, '#pending', duplicate);
    await visible(card.locator('.suggestion'));
    await visible(card.locator('.suggestion').filter({ hasText: 'Ligner #' }));
    await card.locator('[data-action="merge-suggested"]').click();
    await questionItem(mette.page, '#pending', duplicate).waitFor({ state: 'detached' });
    await textIn(citizen.page, '#mine', `Slået sammen med: ${original}`);

    // The same by keyboard: M merges the focused card into its suggestion.
    const again = 'Hvornår står cykelstien langs Usserød Kongevej færdig?';
    await ask(citizen.page, again);
    const card2 = questionItem(ole.page, '#pending', again);
    await visible(card2.locator('.suggestion'));
    await card2.focus();
    await ole.page.keyboard.press('m');
    await card2.waitFor({ state: 'detached' });
  });

  test('the word filter holds a disguised comment until released; a hidden comment can be shown again', async () => {
    await comment(citizen.page, 'Sikke noget l 0 r t');
    await textIn(mette.page, '#comments', 'Holdt tilbage af ordfilteret (lort)');
    await comment(citizen.page, 'Godt initiativ med cykelstien');
    await textIn(other.page, '#comments', 'Godt initiativ');
    assert.equal(await other.page.locator('#comments').textContent().then((s) => s.includes('l 0 r t')), false);
    const held = mette.page.locator('#comments li').filter({ hasText: 'l 0 r t' });
    await held.locator('[data-action="unhide"]').click();
    await textIn(other.page, '#comments', 'l 0 r t');

    const good = mette.page.locator('#comments li').filter({ hasText: 'Godt initiativ' });
    await good.locator('[data-action="hide"]').click();
    await other.page.waitForFunction(() => !document.querySelector('#comments').textContent.includes('Godt initiativ'));
    await good.locator('[data-action="unhide"]').click();
    await textIn(other.page, '#comments', 'Godt initiativ');

    // A question with a filter word is flagged for moderators.
    await ask(citizen.page, 'Er borgmesteren en 1d10t?');
    await textIn(ole.page, '#pending', 'Filterord: idiot');
    // The organizer's own list replaces the defaults.
    await ole.page.locator('#filter-words').fill('møgvej');
    await ole.page.locator('#filter-form button[type=submit]').click();
    await textIn(ole.page, '#filter-msg', 'Ordlisten er gemt');
    await mette.page.waitForFunction(() => document.querySelector('#filter-words').value === 'møgvej');
    await ask(citizen.page, 'Hvornår bliver den MØGVEJ lavet?');
    await textIn(ole.page, '#pending', 'Filterord: møgvej');
  });

  test('the moderator page uses a wide screen and is axe clean with claims, menus and suggestions', async () => {
    const { page } = mette;
    const cols = await page.evaluate(() =>
      ['.col-pending', '.col-main', '.col-side'].map((s) => document.querySelector(s).getBoundingClientRect()));
    assert.ok(cols[0].right <= cols[1].left && cols[1].right <= cols[2].left, 'three columns side by side at 1600 px');
    assert.ok(cols[2].right - cols[0].left > 1300, 'the page is wider than the old 1,100 px');
    await ask(citizen.page, 'Kommer der fartbump på skolevejen?');
    await moderate(page, '#pending', 'fartbump', 'claim');
    await page.locator('#pending details.q-menu > summary').first().click();
    const violations = (await runAxe(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.equal(violations.length, 0, describeViolations(violations));
    for (const p of [citizen, other, mette, ole]) {
      assert.deepEqual(p.unexpectedProblems(), [], `${p.name}: page errors or CSP violations`);
    }
  });
});
