// i18n completeness: every key in both languages, a text for every error code the server can
// send, and no interface text left in a page that the language switch does not change.
//
// The first two read web/js/i18n.js, crates/core and docs/protocol.md directly (no browser); the
// third switches every page to English in Chromium and looks for Danish interface strings.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DICTS } from '../js/i18n.js';
import {
  REPO, ask, closeAllBrowsers, createMeeting, launchPerson, moderate, questionItem, startServer, visible,
  waitForJoined,
} from './helpers.mjs';

const { da, en } = DICTS;

/** Error codes the server sends: the core's rejections and text errors, and the protocol's
 *  table of error and bye codes (docs/protocol.md §5), which adds the hub's own. */
function serverCodes() {
  const codes = new Set();
  for (const file of ['crates/core/src/rejection.rs', 'crates/core/src/text.rs']) {
    const src = fs.readFileSync(path.join(REPO, file), 'utf8');
    const body = src.slice(src.indexOf('pub fn code('));
    for (const m of body.matchAll(/=> "([a-z_]+)"/g)) codes.add(m[1]);
  }
  const proto = fs.readFileSync(path.join(REPO, 'docs/protocol.md'), 'utf8').split('\n');
  const start = proto.findIndex((l) => /^\| code \| meaning \|/.test(l));
  assert.ok(start > 0, 'docs/protocol.md: the table of error codes was not found');
  for (const line of proto.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const first = line.split('|')[1];
    for (const m of first.matchAll(/`([a-z_]+)`/g)) codes.add(m[1]);
  }
  return codes;
}

describe('dictionaries', () => {
  test('every key exists in both languages, and no text is empty by mistake', () => {
    const missingEn = Object.keys(da).filter((k) => !(k in en));
    const missingDa = Object.keys(en).filter((k) => !(k in da));
    assert.deepEqual(missingEn, [], 'keys with no English text');
    assert.deepEqual(missingDa, [], 'keys with no Danish text');
    // Empty on purpose: nothing to say (a state with no overlay, a dead end with no more).
    const emptyOk = (k) => k === 'tv.state.closed' || k.endsWith('.more');
    for (const [name, dict] of Object.entries(DICTS)) {
      const empty = Object.entries(dict).filter(([k, v]) => typeof v !== 'string' || (!v.trim() && !emptyOk(k)));
      assert.deepEqual(empty.map(([k]) => k), [], `${name}: empty texts`);
    }
  });

  test('placeholders are the same in both languages', () => {
    const names = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(',');
    const differ = Object.keys(da).filter((k) => k in en && names(da[k]) !== names(en[k]));
    assert.deepEqual(differ, [], 'keys whose {placeholders} differ between Danish and English');
  });

  test('every error code the server can send has a text in both languages', () => {
    const codes = serverCodes();
    assert.ok(codes.size >= 30, `only ${codes.size} codes found: the parsing broke`);
    for (const code of ['no_meeting', 'banned', 'slow_mode', 'text_too_long', 'rate_limited', 'idle']) {
      assert.ok(codes.has(code), `${code} was not found among the server's codes`);
    }
    const missing = [...codes].filter((c) => !(`err.${c}` in da) || !(`err.${c}` in en));
    assert.deepEqual(missing, [], 'error codes with no text');
  });
});

/** Danish interface strings that differ in English and are whole texts (no placeholders, not
 *  names of the languages): none of these may be on an English page. */
function danishOnly() {
  const out = new Set();
  for (const [k, v] of Object.entries(da)) {
    if (!v || v === en[k] || /\{\w+\}/.test(v) || k === 'app.name') continue;
    out.add(v.trim());
  }
  return out;
}

/** Visible text of every element and the accessible-name attributes, as the page shows them. */
function pageTexts(page) {
  return page.evaluate(() => {
    const texts = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const s = walker.currentNode.textContent.trim();
      // A text whose element says it is in another language (the language switch) is fine.
      if (s && !walker.currentNode.parentElement.closest('[lang]:not(html)')) texts.push(s);
    }
    for (const el of document.querySelectorAll('[aria-label], [title], [placeholder], [alt]')) {
      for (const a of ['aria-label', 'title', 'placeholder', 'alt']) if (el.getAttribute(a)) texts.push(el.getAttribute(a).trim());
    }
    texts.push(document.title);
    return texts;
  });
}

describe('the language switch changes every interface text', () => {
  let server;
  let meeting;
  before(async () => {
    server = await startServer();
    meeting = await createMeeting(server, 'Borgermøde om havnen');
  });
  after(async () => {
    await closeAllBrowsers();
    if (server) await server.stop();
  });

  test('no Danish interface text is left on any page in English', async (t) => {
    const [citizen, mod, studio] = await Promise.all([launchPerson('da-citizen'), launchPerson('da-mod'), launchPerson('da-studio')]);
    t.after(() => Promise.all([citizen, mod, studio].map((p) => p.close())));
    await citizen.page.goto(meeting.viewer);
    await mod.page.goto(meeting.moderator);
    await studio.page.goto(meeting.studio);
    await Promise.all([citizen, mod, studio].map((p) => waitForJoined(p.page)));
    // Some content in every list, so item texts (buttons, states) are on the pages too.
    const q = 'Hvornår åbner den nye havnepromenade?';
    await ask(citizen.page, q);
    await moderate(mod.page, '#pending', q, 'approve');
    await visible(questionItem(citizen.page, '#questions', q));

    const danish = danishOnly();
    const pages = [
      ['viewer', citizen.page, null],
      ['moderator', mod.page, null],
      ['studio', studio.page, null],
      ['admin', citizen.page, `${server.url}/admin`],
      ['front page', citizen.page, `${server.url}/`],
      ['not found', citizen.page, `${server.url}/m/findesikke`],
    ];
    for (const [name, page, url] of pages) {
      if (url) await page.goto(url);
      await page.locator('[data-lang="en"]').click();
      await page.waitForFunction(() => document.documentElement.lang === 'en');
      // One frame for batched renders to run in the new language.
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50))));
      const left = (await pageTexts(page)).filter((s) => danish.has(s));
      assert.deepEqual(left, [], `${name}: Danish text left after switching to English`);
      await page.locator('[data-lang="da"]').click();
    }
    for (const p of [citizen, mod, studio]) assert.deepEqual(p.unexpectedProblems([/status of 404/]), [], p.name);
  });
});
