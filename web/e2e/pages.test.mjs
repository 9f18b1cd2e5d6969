// The pages a municipality puts in front of its citizens (issue 13): the dead ends (unknown
// meeting, removed citizen, also after a reload), the meeting after its end, the video-first
// citizen page on a phone and a desktop, status messages that clear themselves, the studio's
// presenter view, branding from the config, and `--demo` run twice. Positions are measured with
// getBoundingClientRect at 1280×900 and 360×740; every state is scanned with axe.
//
// Staff actions are sent as commands from the staff pages' own connections (the moderator page's
// buttons are tested in moderation.test.mjs).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  api, ask, closeAllBrowsers, createMeeting, describeViolations, goLive, launchPerson, runAxe, startServer,
  tempDir, textIn, visible, waitForJoined,
} from './helpers.mjs';

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 360, height: 740 };

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

/** A command from a staff page's connection; resolves with the ack. */
function command(page, cmd) {
  return page.evaluate((c) => window.townhall.conn.send(c), cmd);
}

const rect = (page, sel) =>
  page.evaluate((s) => {
    const el = document.querySelector(s);
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return { top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height };
  }, sel);

/** Buttons and fields a citizen could act with, visible on the page. */
const visibleControls = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll('main button, main textarea, main input, main select')]
      .filter((el) => el.offsetParent !== null || el.getClientRects().length > 0)
      .map((el) => el.id || el.className || el.tagName),
  );

async function person(name, url, viewport = DESKTOP) {
  const p = await launchPerson(name, { viewport });
  await p.page.goto(url);
  await waitForJoined(p.page);
  return p;
}

describe('dead ends', () => {
  test('an unknown meeting gets the not-found page (404) on every meeting route', async (t) => {
    for (const route of ['/m/findesikke', '/m/findesikke/moderate', '/m/findesikke/studio', '/m/%20bad%20id']) {
      const res = await fetch(`${server.url}${route}`);
      assert.equal(res.status, 404, route);
      assert.match(await res.text(), /Mødet findes ikke/, route);
    }
    const visitor = await launchPerson('lost', { viewport: PHONE });
    t.after(() => visitor.close());
    const { page } = visitor;
    await page.goto(`${server.url}/m/findesikke`);
    await textIn(page, 'h1', 'Mødet findes ikke');
    assert.deepEqual(await visibleControls(page), [], 'no forms or buttons on the not-found page');
    await axeClean(page, 'not found');
    await page.locator('[data-lang="en"]').click();
    await textIn(page, 'h1', 'The meeting does not exist');
    assert.deepEqual(visitor.unexpectedProblems([/status of 404/]), []);
  });

  test('a removed citizen sees only the removal, also after a reload', async (t) => {
    const meeting = await createMeeting(server, 'Borgermøde om vejene');
    const mod = await person('remover', meeting.moderator);
    const citizen = await person('removed', meeting.viewer, PHONE);
    t.after(() => Promise.all([mod.close(), citizen.close()]));
    const { page } = citizen;
    await ask(page, 'Hvorfor er der huller i vejen?');
    const participant = await page.evaluate(() => window.townhall.model.participant);

    await command(mod.page, { type: 'ban_participant', participant });
    await textIn(page, '#dead-end-h', 'Du er fjernet fra mødet');
    await textIn(page, '#fatal', 'Du er blevet fjernet fra mødet');
    assert.equal(await page.locator('#meeting-ui').isVisible(), false);
    // Nothing left to act with but the link to the front page (and the language switch).
    assert.deepEqual(await visibleControls(page), []);
    assert.doesNotMatch(await page.locator('main').innerText(), /stadig følge mødet/);
    await axeClean(page, 'removed');

    await page.reload();
    await page.waitForFunction(() => window.townhall.conn.state === 'closed');
    await textIn(page, '#dead-end-h', 'Du er fjernet fra mødet');
    assert.equal(await page.locator('#meeting-ui').isVisible(), false);
    assert.deepEqual(await visibleControls(page), []);
    await page.locator('[data-lang="en"]').click();
    await textIn(page, '#dead-end-h', 'You have been removed from the meeting');
    await axeClean(page, 'removed after a reload');
    assert.deepEqual(citizen.unexpectedProblems(), []);
  });
});

describe('after the end', () => {
  test('no action buttons, no "online", the ended view; the studio shows nothing to do', async (t) => {
    const meeting = await createMeeting(server, 'Borgermøde om skolerne');
    const mod = await person('ender', meeting.moderator);
    const citizen = await person('after', meeting.viewer);
    const phone = await person('after-phone', meeting.viewer, PHONE);
    const studio = await person('after-studio', meeting.studio);
    t.after(() => Promise.all([mod, citizen, phone, studio].map((p) => p.close())));

    await ask(citizen.page, 'Hvornår bliver skolen renoveret?');
    const [qid] = await citizen.page.evaluate(() => window.townhall.model.mine().map((q) => q.id));
    await command(mod.page, { type: 'approve_question', question: qid });
    await command(mod.page, { type: 'open_poll', question: 'Skal skolen have en ny legeplads?', options: ['Ja', 'Nej'] });
    await visible(citizen.page.locator('#questions button.vote'));
    await visible(citizen.page.locator('#polls input[type=radio]'));
    await textIn(citizen.page, '#online', 'online');

    await api(server, 'POST', `/api/meetings/${meeting.id}/end`);
    for (const p of [citizen, phone]) {
      await visible(p.page.locator('#ended'));
      await textIn(p.page, '#ended-h', 'Mødet er afsluttet');
      assert.equal(await p.page.locator('#online').textContent(), '');
      assert.equal(await p.page.locator('#tv').isVisible(), false);
    }
    const { page } = citizen;
    // Nothing that cannot work: no vote buttons, no forms to ask, chat or answer the poll.
    assert.equal(await page.locator('button.vote').count(), 0);
    assert.equal(await page.locator('#polls input[type=radio]').count(), 0);
    assert.deepEqual(await visibleControls(page), []);
    // … and what happened is still there to read.
    await textIn(page, '#questions', 'Hvornår bliver skolen renoveret?');
    await textIn(page, '#polls', 'Skal skolen have en ny legeplads?');
    await axeClean(page, 'ended, desktop');
    await axeClean(phone.page, 'ended, phone');

    await visible(studio.page.locator('#studio-ended'));
    assert.equal(await studio.page.locator('#broadcast').isVisible(), false);
    assert.equal(await studio.page.locator('[data-action="answered"]').count(), 0);
    assert.equal(await studio.page.locator('#online').textContent(), '');
    await axeClean(studio.page, 'studio after the end');
    for (const p of [citizen, phone, studio]) assert.deepEqual(p.unexpectedProblems(), [], p.name);
  });
});

describe('the citizen page, video first', () => {
  let meeting;
  let mod;
  before(async () => {
    meeting = await createMeeting(server, 'Borgermøde om Fremtidens Hørsholm');
    mod = await person('vf-mod', meeting.moderator);
  });

  test('on a phone: the player first, still in view after scrolling; tabs with counts', async (t) => {
    const citizen = await person('phone', meeting.viewer, PHONE);
    t.after(() => citizen.close());
    const { page } = citizen;
    await ask(page, 'Kommer der flere cykelstier i byen?');
    await page.locator('#tab-chat').click();
    await page.locator('#chat-text').fill('Godt at mødet er online!');
    await page.locator('#chat-text').press('Enter');
    await textIn(page, '#tab-chat-n', '1');
    await command(mod.page, { type: 'open_poll', question: 'Hvad synes du om mødet?', options: ['Godt', 'Skidt'] });
    await visible(page.locator('#tab-polls'));
    await textIn(page, '#tab-polls-n', '1');
    const fit = await page.evaluate(() => {
      const tabs = document.querySelector('#tabs');
      return { scroll: tabs.scrollWidth, client: tabs.clientWidth };
    });
    assert.ok(fit.scroll <= fit.client, `the three tabs do not fit a ${PHONE.width} px screen: ${JSON.stringify(fit)}`);

    // The player is the first thing under the title, within the first screen.
    const tv = await rect(page, '#tv');
    assert.ok(tv.top < 200 && tv.bottom < PHONE.height, `player at ${JSON.stringify(tv)}`);
    assert.ok(tv.width >= PHONE.width - 1, `player ${tv.width} px wide on a ${PHONE.width} px phone`);
    // Scrolled down to the end of the questions: the player is still on screen, at the top.
    await page.locator('#tab-questions').click();
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await page.waitForFunction(() => window.scrollY > 100);
    const after = await rect(page, '#tv');
    assert.ok(after.top >= -1 && after.top < 5 && after.bottom <= PHONE.height, `player after scrolling at ${JSON.stringify(after)}`);

    // Tabs: one panel at a time, arrow keys move between the tabs.
    assert.equal(await page.locator('#panel-chat').isVisible(), false);
    await page.locator('#tab-questions').focus();
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-chat');
    assert.equal(await page.locator('#tab-chat').getAttribute('aria-selected'), 'true');
    await visible(page.locator('#panel-chat'));
    assert.equal(await page.locator('#panel-questions').isVisible(), false);
    await page.keyboard.press('End');
    await visible(page.locator('#polls-card'));
    await axeClean(page, 'phone, poll tab');
    await page.keyboard.press('Home');
    await visible(page.locator('#ask-text'));
    // The name field is part of the ask form.
    assert.equal(await page.locator('#ask-form #name-input').count(), 1);
    await axeClean(page, 'phone, questions tab');
    assert.deepEqual(citizen.unexpectedProblems(), []);
  });

  test('with a speaker live: the picture plays, goes full screen and back, stays on top on a phone', async (t) => {
    const speaker = await launchPerson('fs-studio', { media: true });
    t.after(() => speaker.close());
    await speaker.page.goto(meeting.studio);
    await waitForJoined(speaker.page);
    await goLive(speaker.page, { label: 'Borgmester' });
    const citizen = await person('fs-phone', meeting.viewer, PHONE);
    t.after(() => citizen.close());
    const { page } = citizen;
    await page.waitForFunction(() => document.querySelector('#stage').dataset.state === 'playing', null, { timeout: 20_000 });
    const button = await visible(page.locator('#tv-fullscreen'));
    assert.equal(await button.textContent(), 'Fuld skærm');
    await button.click();
    await page.waitForFunction(() => document.fullscreenElement?.id === 'stage');
    await textIn(page, '#tv-fullscreen', 'Afslut fuld skærm');
    await page.evaluate(() => document.exitFullscreen());
    await page.waitForFunction(() => document.fullscreenElement === null);
    await textIn(page, '#tv-fullscreen', 'Fuld skærm');
    // The playing picture, its controls included, stays on screen while the page scrolls.
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await page.waitForFunction(() => window.scrollY > 100);
    const tv = await rect(page, '#tv');
    assert.ok(tv.top >= -1 && tv.top < 5 && tv.bottom <= PHONE.height, `player after scrolling at ${JSON.stringify(tv)}`);
    const controls = await rect(page, '.tv-controls');
    assert.ok(controls.bottom <= tv.bottom && controls.right <= PHONE.width + 1, `controls at ${JSON.stringify(controls)}`);
    await axeClean(page, 'phone, playing');
    assert.deepEqual(citizen.unexpectedProblems(), []);
  });

  test('on a desktop: player left and first, questions beside it, no tabs', async (t) => {
    const citizen = await person('desktop', meeting.viewer, DESKTOP);
    t.after(() => citizen.close());
    const { page } = citizen;
    assert.equal(await page.locator('#tabs').isVisible(), false);
    const tv = await rect(page, '#tv');
    const questions = await rect(page, '#panel-questions');
    const chat = await rect(page, '#panel-chat');
    assert.ok(tv.top < 200 && tv.bottom < DESKTOP.height, `player at ${JSON.stringify(tv)}`);
    assert.ok(questions.left >= tv.right, 'the questions are beside the player');
    assert.ok(questions.top < DESKTOP.height / 3, 'the questions start at the top');
    assert.ok(chat.top >= tv.bottom && chat.right <= questions.left, 'the chat is under the player');
    for (const sel of ['#panel-questions', '#panel-chat', '#polls-card']) await visible(page.locator(sel));
    await axeClean(page, 'desktop');
  });

  test('messages clear themselves, keep the focus, and follow the language', async (t) => {
    const citizen = await person('messages', meeting.viewer, DESKTOP);
    t.after(() => citizen.close());
    const { page } = citizen;
    await page.locator('#ask-text').fill('Hvordan bliver budgettet for kulturen fordelt?');
    await page.locator('#ask-submit').click();
    await textIn(page, '#ask-msg', 'Tak! Dit spørgsmål er sendt');
    // The focus stays on the button the citizen pressed, not on <body>.
    assert.equal(await page.evaluate(() => document.activeElement.id), 'ask-submit');
    // One live region, so it is announced once.
    assert.equal(await page.locator('#ask-msg').getAttribute('role'), 'status');
    await page.locator('[data-lang="en"]').click();
    await textIn(page, '#ask-msg', 'Thank you! Your question was sent');
    // Gone by itself within a few seconds.
    await page.waitForFunction(() => document.querySelector('#ask-msg').textContent === '', null, { timeout: 10_000 });

    // "No connection" is wrong once the connection is back: it goes.
    const said = await page.evaluate(async () => {
      const { conn } = window.townhall;
      conn.drop(conn.ws);
      document.querySelector('#chat-text').value = 'Hallo?';
      document.querySelector('#chat-form').requestSubmit();
      await new Promise((r) => setTimeout(r, 100));
      return document.querySelector('#chat-msg').textContent;
    });
    assert.match(said, /No connection/);
    await page.waitForFunction(() => window.townhall.conn.state === 'open');
    await page.waitForFunction(() => document.querySelector('#chat-msg').textContent === '');
    await page.locator('[data-lang="da"]').click();
    assert.deepEqual(citizen.unexpectedProblems(), []);
  });
});

describe('the studio: presenter view', () => {
  test('the question on air and the next one fill the first screen; the broadcast folds away', async (t) => {
    const meeting = await createMeeting(server, 'Borgermøde om klimaet');
    const mod = await person('pv-mod', meeting.moderator);
    const citizen = await person('pv-citizen', meeting.viewer);
    t.after(() => Promise.all([mod.close(), citizen.close()]));
    const texts = [
      'Hvordan vil kommunen nå målet om CO2-neutralitet i 2030?',
      'Kommer der solceller på de kommunale bygninger?',
      'Hvad gør kommunen ved oversvømmelserne ved kysten?',
    ];
    for (const text of texts) await ask(citizen.page, text);
    const ids = await citizen.page.evaluate(() => window.townhall.model.mine().map((q) => q.id).sort((a, b) => a - b));
    for (const id of ids) await command(mod.page, { type: 'approve_question', question: id });
    await command(mod.page, { type: 'queue_question', question: ids[1] });
    await command(mod.page, { type: 'queue_question', question: ids[2] });
    await command(mod.page, { type: 'put_on_air', question: ids[0] });
    await command(mod.page, { type: 'pin_announcement', text: 'Pause kl. 20.15' });

    for (const [label, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
      const studio = await person(`pv-studio-${label}`, meeting.studio, viewport);
      const { page } = studio;
      await textIn(page, '#on-air .studio-text', texts[0]);
      await textIn(page, '#next', texts[1]);
      await textIn(page, '#queue', texts[2]);
      await textIn(page, '#studio-announcement', 'Pause kl. 20.15');
      const onAir = await rect(page, '#on-air .studio-text');
      assert.ok(onAir.top < viewport.height && onAir.bottom <= viewport.height, `${label}: on-air text at ${JSON.stringify(onAir)}`);
      const answered = await rect(page, '#on-air [data-action="answered"]');
      assert.ok(answered.bottom <= viewport.height, `${label}: "mark answered" at ${JSON.stringify(answered)}`);
      if (label === 'desktop') {
        const next = await rect(page, '#next');
        const note = await rect(page, '#announcement-box');
        assert.ok(next.bottom <= viewport.height && next.left >= onAir.right, `next at ${JSON.stringify(next)}`);
        assert.ok(note.bottom <= viewport.height, `announcement at ${JSON.stringify(note)}`);
        // The on-air text is large.
        const size = await page.evaluate(() => parseFloat(getComputedStyle(document.querySelector('#on-air .studio-text')).fontSize));
        assert.ok(size >= 40, `on-air text ${size}px`);
      }
      // Camera, microphone, screen and statistics fold away; "Go live" and mute stay in the bar.
      assert.equal(await page.locator('#bc-panel').isVisible(), false);
      await visible(page.locator('#bc-go'));
      await page.locator('#bc-toggle').click();
      assert.equal(await page.locator('#bc-toggle').getAttribute('aria-expanded'), 'true');
      await visible(page.locator('#bc-screen'));
      await visible(page.locator('#bc-quality'));
      await axeClean(page, `studio, ${label}`);
      await page.locator('#bc-toggle').click();
      assert.equal(await page.locator('#bc-panel').isVisible(), false);
      assert.deepEqual(studio.unexpectedProblems(), [], label);
      await studio.close();
    }
  });
});

describe('branding and the demo meeting', () => {
  test('name, logo and a contrast-checked accent colour from the config on every page', async (t) => {
    const dir = tempDir('brand');
    const logo = path.join(dir, 'logo.svg');
    fs.writeFileSync(logo, '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="#00594f"/></svg>');
    const config = path.join(dir, 'townhall.toml');
    // A yellow far too light for white text: the server must darken it.
    fs.writeFileSync(config, `[brand]\nname = "Hørsholm Kommune"\nlogo = ${JSON.stringify(logo)}\naccent = "#f2c200"\n`);
    const branded = await startServer({ extraArgs: ['--config', config] });
    t.after(() => branded.stop());
    assert.match(branded.output(), /brand\.accent #f2c200/);
    const meeting = await createMeeting(branded, 'Borgermøde om byudvikling');
    const visitor = await launchPerson('branded');
    t.after(() => visitor.close());
    const { page } = visitor;
    for (const url of [meeting.viewer, meeting.studio, meeting.moderator, `${branded.url}/admin`, `${branded.url}/`, `${branded.url}/m/findesikke`]) {
      await page.goto(url);
      await textIn(page, '.brand-name', 'Hørsholm Kommune').catch(async (e) => {
        throw new Error(`${url}: ${e.message}\n${(await page.content()).slice(0, 1500)}`);
      });
      await page.waitForFunction(() => document.querySelector('.brand-logo')?.naturalWidth > 0);
      const { accent, onWhite } = await page.evaluate(() => {
        const probe = document.createElement('span');
        probe.className = 'visually-hidden';
        probe.style.color = 'var(--primary)';
        document.body.append(probe);
        const rgb = getComputedStyle(probe).color.match(/\d+/g).map(Number);
        probe.remove();
        const lin = (c) => ((c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
        const l = 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2]);
        return { accent: rgb, onWhite: 1.05 / (l + 0.05) };
      });
      assert.notDeepEqual(accent, [0xf2, 0xc2, 0x00], `${url}: the failing accent was used as is`);
      assert.notDeepEqual(accent, [0x0b, 0x4f, 0x8a], `${url}: the default accent, not the configured one`);
      assert.ok(onWhite >= 4.5, `${url}: accent ${accent} has ${onWhite.toFixed(2)}:1 on white`);
    }
    await page.goto(meeting.viewer);
    await waitForJoined(page);
    assert.match(await page.title(), /– Hørsholm Kommune$/);
    await axeClean(page, 'branded viewer');
    assert.deepEqual(visitor.unexpectedProblems([/status of 404/]), []);
  });

  test('--demo run again reuses the live demo meeting', async () => {
    const dataDir = tempDir('demo');
    const ids = [];
    for (let run = 0; run < 2; run++) {
      const s = await startServer({ dataDir, extraArgs: ['--demo'], adminToken: 'demo-admin-token-0123456789' });
      // The demo's links follow the listening line.
      const until = Date.now() + 10_000;
      while (!/studio:/.test(s.output()) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      const m = /citizens:\s+\S+\/m\/(\S+)/.exec(s.output());
      assert.ok(m, `no demo link in:\n${s.output()}`);
      ids.push(m[1]);
      const { json } = await api(s, 'GET', '/api/meetings');
      assert.equal(json.filter((x) => x.title === 'Borgermøde (demo)').length, 1, `run ${run + 1}: ${JSON.stringify(json)}`);
      await s.stop();
    }
    assert.equal(ids[0], ids[1]);
  });
});
