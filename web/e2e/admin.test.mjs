// The organizer's page against the real API: token, create with links, start and end, new
// links, export, delete with a confirmation step.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { closeAllBrowsers, launchPerson, startServer, textIn, visible, waitForJoined } from './helpers.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await closeAllBrowsers();
  if (server) await server.stop();
});

test('an organizer runs a meeting from the admin page', async (t) => {
  const admin = await launchPerson('admin');
  t.after(() => admin.close());
  const { page, context } = admin;
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  await page.goto(`${server.url}/admin`);

  // A wrong token is refused with a clear message.
  await page.locator('#token-input').fill('forkert-token');
  await page.locator('#token-form button[type=submit]').click();
  await textIn(page, '#admin-msg', 'Administratortoken er forkert');

  await page.locator('#token-input').fill(server.adminToken);
  await page.locator('#token-form button[type=submit]').click();
  await textIn(page, '#admin-msg', 'Token er gemt');
  assert.equal(await page.evaluate(() => localStorage.getItem('townhall.adminToken')), null, 'token must not be in localStorage');
  await visible(page.locator('#meetings-empty'));

  // Create: the three links, with copy buttons.
  const title = 'Borgermøde om den nye bydel';
  await page.locator('#create-title').fill(title);
  await page.locator('#create-form button[type=submit]').click();
  await textIn(page, '#admin-msg', `Mødet "${title}" er oprettet`);
  const viewerUrl = await page.locator('#link-viewer').inputValue();
  const modUrl = await page.locator('#link-moderator').inputValue();
  const studioUrl = await page.locator('#link-studio').inputValue();
  assert.match(viewerUrl, /^http:\/\/127\.0\.0\.1:\d+\/m\/[\w-]+$/);
  assert.match(modUrl, /\/moderate#.+/);
  assert.match(studioUrl, /\/studio#.+/);
  await page.locator('[data-action="copy-moderator"]').click();
  await textIn(page, '#links', 'Kopieret');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), modUrl);

  const item = page.locator('#meetings [data-mid]').filter({ hasText: title });
  await visible(item);
  await textIn(page, '#meetings', 'Planlagt');

  // A citizen waits in the meeting.
  const citizen = await launchPerson('citizen');
  t.after(() => citizen.close());
  await citizen.page.goto(viewerUrl);
  await waitForJoined(citizen.page);
  await textIn(citizen.page, '#meeting-status', 'Planlagt');

  // Start and end.
  await item.locator('[data-action="start"]').click();
  await textIn(page, '#admin-msg', 'er startet');
  await textIn(citizen.page, '#meeting-status', 'Live');
  await visible(item.locator('[data-action="end"]'));

  // New links: confirm first; then the old moderator link stops working.
  await item.locator('[data-action="links"]').click();
  await textIn(page, '#meetings', 'Nye links gør de gamle');
  await item.locator('[data-action="confirm-links"]').click();
  await textIn(page, '#admin-msg', 'De gamle virker ikke længere');
  const newModUrl = await page.locator('#link-moderator').inputValue();
  assert.notEqual(newModUrl, modUrl);
  const mod = await launchPerson('moderator');
  t.after(() => mod.close());
  await mod.page.goto(modUrl);
  await textIn(mod.page, '#fatal', 'Linket er ugyldigt');
  await mod.page.goto('about:blank');
  await mod.page.goto(newModUrl);
  await waitForJoined(mod.page);

  // Export JSON and CSV: real downloads of the record.
  for (const kind of ['json', 'csv']) {
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      item.locator(`[data-action="export-${kind}"]`).click(),
    ]);
    assert.match(download.suggestedFilename(), new RegExp(`\\.${kind}$`));
    const body = fs.readFileSync(await download.path(), 'utf8');
    assert.ok(body.length > 0, `empty ${kind} export`);
    if (kind === 'json') JSON.parse(body);
  }
  await textIn(page, '#admin-msg', 'Eksporten er hentet');

  // End: a confirmation step too (ending cannot be undone), and cancel really cancels.
  await item.locator('[data-action="end"]').click();
  await textIn(page, '#meetings', `Afslut "${title}" for alle deltagere nu?`);
  await item.locator('[data-action="cancel"]').click();
  await visible(item.locator('[data-action="end"]'));
  await item.locator('[data-action="end"]').click();
  await item.locator('[data-action="confirm-end"]').click();
  await textIn(page, '#admin-msg', 'er afsluttet');
  await textIn(citizen.page, '#meeting-status', 'Afsluttet');

  // Delete: a confirmation step, and cancel really cancels.
  await item.locator('[data-action="delete"]').click();
  await textIn(page, '#meetings', `Slet "${title}" og alle dets data permanent?`);
  await item.locator('[data-action="cancel"]').click();
  await visible(item.locator('[data-action="delete"]'));
  await item.locator('[data-action="delete"]').click();
  await item.locator('[data-action="confirm-delete"]').click();
  await textIn(page, '#admin-msg', `Mødet "${title}" er slettet`);
  await item.waitFor({ state: 'detached' });
  await textIn(citizen.page, '#fatal', 'Mødet er slettet');
  await citizen.page.waitForFunction(() => window.townhall.conn.state === 'closed');

  // The one refused request is the wrong token at the start.
  assert.deepEqual(admin.unexpectedProblems([/status of 401/]), []);
  assert.deepEqual(citizen.unexpectedProblems(), []);
});
