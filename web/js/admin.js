// The organizer's page: /admin. Talks to the organizer HTTP API with the admin token as a Bearer
// token; the token is kept in sessionStorage only (gone when the tab closes).

import { $, charCount, copyValue, h, setText } from './dom.js';
import { dateTime, errorText, has, t } from './i18n.js';
import { charCounter, formMessage, initPage, lengthError } from './page.js';

const TOKEN_KEY = 'townhall.adminToken';
const MAX_TITLE = 120;

class ApiError extends Error {
  constructor(code, message = '', status = 0) {
    super(message || code);
    this.code = code;
    this.status = status;
  }
}

let meetings = [];
let loaded = false;
/** {id, kind: 'delete' | 'links'} while a confirmation is shown. */
let confirming = null;
/** The links last shown: {title, viewer_url, moderator_url, studio_url}. */
let links = null;

const retitle = () => {
  document.title = `${t('admin.title')} – ${t('app.name')}`;
};
initPage(() => {
  retitle();
  renderMeetings();
  renderLinks();
});
retitle();
charCounter($('#create-title'), $('#create-count'), MAX_TITLE, charCount);

function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

function setToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage disabled: the token lives in the field only.
  }
}

function message(text, error = false) {
  formMessage($('#admin-msg'), text, error);
}

function apiErrorText(e) {
  if (e.code === 'missing_token') return t('admin.token.missing');
  // The admin token is not a meeting link: any 401 means "wrong admin token".
  if (e.status === 401 || e.status === 403) return t('err.unauthorized');
  if (has(`err.${e.code}`)) return errorText(e.code);
  if (e.status === 404) return t('err.not_found');
  if (e.code === 'network') return t('err.network');
  return e.message && e.message !== e.code ? `${t('err.unknown', { code: e.code })} ${e.message}` : t('err.unknown', { code: e.code });
}

async function api(method, path, body) {
  const token = getToken() || $('#token-input').value.trim();
  if (!token) throw new ApiError('missing_token');
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError('network');
  }
  if (!res.ok) {
    let code = `http_${res.status}`;
    let msg = '';
    try {
      const j = await res.json();
      if (j && typeof j.code === 'string') code = j.code;
      if (j && typeof j.message === 'string') msg = j.message;
    } catch {
      // not JSON
    }
    throw new ApiError(code, msg, res.status);
  }
  return res;
}

const absolute = (u) => (u ? new URL(u, location.origin).href : '');

async function loadMeetings() {
  setText($('#meetings-empty'), t('admin.meetings.loading'));
  try {
    const res = await api('GET', '/api/meetings');
    meetings = await res.json();
    loaded = true;
  } catch (e) {
    message(apiErrorText(e), true);
  }
  setText($('#meetings-empty'), t('admin.meetings.empty'));
  renderMeetings();
}

function renderMeetings() {
  const list = $('#meetings');
  $('#meetings-empty').hidden = !loaded || meetings.length > 0;
  const active = document.activeElement;
  const fkey = list.contains(active) ? active.dataset.fkey : null;
  list.replaceChildren(...meetings.map(meetingItem));
  if (fkey) list.querySelector(`[data-fkey="${CSS.escape(fkey)}"]`)?.focus();
}

function meetingItem(m) {
  const titleId = `mt-${m.id}`;
  const act = (kind, label, onClick, cls = '') =>
    h('button', {
      type: 'button',
      class: cls,
      'data-fkey': `${kind}-${m.id}`,
      'data-action': kind,
      'aria-describedby': titleId,
      on: { click: onClick },
    }, label);

  let actions;
  if (confirming && confirming.id === m.id) {
    const text = confirming.kind === 'delete' ? t('admin.delete.confirm', { title: m.title }) : t('admin.newLinks.confirm');
    actions = h(
      'div',
      { class: 'confirm', role: 'group', 'aria-labelledby': `confirm-${m.id}` },
      h('p', { id: `confirm-${m.id}`, class: 'confirm-text' }, text),
      h(
        'div',
        { class: 'actions' },
        confirming.kind === 'delete'
          ? act('confirm-delete', t('admin.delete.yes'), () => remove(m), 'danger')
          : act('confirm-links', t('admin.confirm.yes'), () => newLinks(m), 'primary'),
        act('cancel', t('act.cancel'), () => {
          confirming = null;
          renderMeetings();
          $(`[data-fkey="${m._from}-${m.id}"]`)?.focus();
        }),
      ),
    );
  } else {
    actions = h(
      'div',
      { class: 'actions' },
      m.status === 'scheduled' ? act('start', t('admin.start'), () => setStatus(m, 'start'), 'primary') : null,
      m.status === 'live' ? act('end', t('admin.end'), () => setStatus(m, 'end')) : null,
      act('links', t('admin.newLinks'), () => ask(m, 'links')),
      act('export-json', t('admin.exportJson'), () => exportRecord(m, 'json')),
      act('export-csv', t('admin.exportCsv'), () => exportRecord(m, 'csv')),
      act('delete', t('admin.delete'), () => ask(m, 'delete'), 'danger'),
    );
  }
  return h(
    'li',
    { class: 'meeting-item', 'data-mid': m.id },
    h('h3', { id: titleId }, m.title),
    h(
      'p',
      { class: 'meta' },
      h('span', { class: `badge status-${m.status}` }, t(`status.${m.status}`)),
      ' ',
      m.created_at ? h('span', {}, `${t('admin.col.created')}: ${dateTime(m.created_at)}`) : null,
    ),
    m.viewer_url ? h('p', {}, h('a', { href: absolute(m.viewer_url), 'aria-describedby': titleId }, t('admin.open'))) : null,
    actions,
  );
}

function ask(m, kind) {
  confirming = { id: m.id, kind };
  m._from = kind;
  renderMeetings();
  $(`[data-fkey="confirm-${kind === 'delete' ? 'delete' : 'links'}-${m.id}"]`)?.focus();
}

async function setStatus(m, action) {
  try {
    await api('POST', `/api/meetings/${encodeURIComponent(m.id)}/${action}`);
    message(t(action === 'start' ? 'admin.started' : 'admin.ended', { title: m.title }));
    await loadMeetings();
  } catch (e) {
    message(apiErrorText(e), true);
  }
}

async function newLinks(m) {
  try {
    const res = await api('POST', `/api/meetings/${encodeURIComponent(m.id)}/links`);
    const body = await res.json();
    confirming = null;
    links = { title: m.title, viewer_url: body.viewer_url || m.viewer_url, ...body };
    renderMeetings();
    renderLinks(true);
    message(t('admin.newLinks.done', { title: m.title }));
  } catch (e) {
    message(apiErrorText(e), true);
  }
}

async function remove(m) {
  try {
    await api('DELETE', `/api/meetings/${encodeURIComponent(m.id)}`);
    confirming = null;
    message(t('admin.deleted', { title: m.title }));
    await loadMeetings();
    $('#meetings-h').focus?.();
  } catch (e) {
    message(apiErrorText(e), true);
  }
}

function filenameFrom(res, fallback) {
  const cd = res.headers.get('Content-Disposition') || '';
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  if (!m) return fallback;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

async function exportRecord(m, kind) {
  try {
    const res = await api('GET', `/api/meetings/${encodeURIComponent(m.id)}/export.${kind}`);
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: filenameFrom(res, `townhall-${m.id}.${kind}`), class: 'visually-hidden' }, 'download');
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    message(t('admin.exported'));
  } catch (e) {
    message(apiErrorText(e), true);
  }
}

function linkRow(key, url) {
  const id = `link-${key}`;
  const label = t(`admin.link.${key}`);
  const input = h('input', { type: 'text', id, readonly: true, value: absolute(url), class: 'link-field', spellcheck: 'false' });
  const status = h('span', { class: 'copy-status', role: 'status' });
  return h(
    'div',
    { class: 'link-row' },
    h('label', { for: id }, label),
    h(
      'div',
      { class: 'link-line' },
      input,
      h('button', {
        type: 'button',
        'data-action': `copy-${key}`,
        'aria-label': t('admin.copyLabel', { what: label }),
        on: { click: () => copy(input, status) },
      }, t('admin.copy')),
    ),
    status,
  );
}

async function copy(input, status) {
  setText(status, (await copyValue(input)) ? t('admin.copied') : t('admin.copyFailed'));
}

function renderLinks(focus = false) {
  const section = $('#links');
  if (!links) {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  $('#links-body').replaceChildren(
    h('p', { class: 'links-title' }, t('admin.links.for', { title: links.title })),
    links.viewer_url ? linkRow('viewer', links.viewer_url) : null,
    linkRow('moderator', links.moderator_url),
    linkRow('studio', links.studio_url),
  );
  if (focus) section.focus();
}

// Wiring.

const stored = getToken();
if (stored) {
  $('#token-input').value = stored;
  loadMeetings();
}

$('#token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const value = $('#token-input').value.trim();
  if (!value) {
    message(t('admin.token.missing'), true);
    return;
  }
  setToken(value);
  message(t('admin.token.saved'));
  loadMeetings();
});

$('#token-forget').addEventListener('click', () => {
  setToken('');
  $('#token-input').value = '';
  meetings = [];
  loaded = false;
  links = null;
  renderMeetings();
  renderLinks();
  message(t('admin.token.forgotten'));
});

$('#meetings-load').addEventListener('click', loadMeetings);

$('#create-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('#create-title');
  const title = input.value.trim();
  if (!title || charCount(title) > MAX_TITLE) {
    message(lengthError(title), true);
    input.focus();
    return;
  }
  try {
    if (!getToken() && $('#token-input').value.trim()) setToken($('#token-input').value.trim());
    const res = await api('POST', '/api/meetings', { title });
    const body = await res.json();
    input.value = '';
    input.dispatchEvent(new Event('input'));
    links = { ...body, title: body.title || title };
    message(t('admin.create.done', { title: links.title }));
    renderLinks(true);
    await loadMeetings();
  } catch (err) {
    message(apiErrorText(err), true);
  }
});
