// The organizer's page: /admin. Talks to the organizer HTTP API with the admin token as a Bearer
// token; the token is kept in sessionStorage only (gone when the tab closes).

import { $, charCount, copyValue, h, setText } from './dom.js';
import { dateTime, errorText, getLang, has, t } from './i18n.js';
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
/** {id, kind: 'delete' | 'links' | 'end'} while a confirmation is shown. */
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

/** A datetime-local value (the browser's wall time) as RFC 3339, or '' when empty. */
function toRfc3339(local) {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? local : d.toISOString();
}

/** RFC 3339 as a datetime-local value in the browser's time zone. */
function toLocalInput(rfc3339) {
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** The schedule fields of a form (named starts, ends, description, agenda, qa_before_start)
 *  as the API takes them; null when the form leaves the meeting unscheduled. */
function scheduleFrom(form) {
  const v = (name) => form.elements[name].value.trim();
  const starts = v('starts');
  const ends = v('ends');
  const description = v('description');
  const agenda = form.elements.agenda.value.split('\n').map((x) => x.trim()).filter(Boolean);
  const qa = form.elements.qa_before_start.checked;
  if (!starts && !ends && !description && agenda.length === 0) return null;
  return { starts_at: toRfc3339(starts), ends_at: toRfc3339(ends), description, agenda, qa_before_start: qa };
}

/** The schedule form of one meeting in the list. */
function scheduleForm(m) {
  const s = m.schedule || {};
  const id = (name) => `s-${name}-${m.id}`;
  const field = (name, label, el) => [h('label', { for: id(name) }, label), el];
  const form = h(
    'form',
    { class: 'stack schedule-form', novalidate: true, on: { submit: (e) => saveSchedule(e, m) } },
    field('starts', t('admin.schedule.starts'), h('input', { type: 'datetime-local', id: id('starts'), name: 'starts', value: s.starts_at ? toLocalInput(s.starts_at) : '' })),
    field('ends', t('admin.schedule.ends'), h('input', { type: 'datetime-local', id: id('ends'), name: 'ends', value: s.ends_at ? toLocalInput(s.ends_at) : '' })),
    field('description', t('admin.schedule.description'), h('textarea', { id: id('description'), name: 'description', rows: '3', value: s.description || '' })),
    field('agenda', t('admin.schedule.agenda'), h('textarea', { id: id('agenda'), name: 'agenda', rows: '4', value: (s.agenda || []).join('\n') })),
    h('div', { class: 'check' },
      h('input', { type: 'checkbox', id: id('qa'), name: 'qa_before_start', checked: !!s.qa_before_start }),
      h('label', { for: id('qa') }, t('admin.schedule.qaBefore'))),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', 'data-fkey': `save-schedule-${m.id}` }, t('admin.schedule.save'))),
  );
  return h('details', { class: 'schedule-edit' }, h('summary', {}, t('admin.schedule.edit')), form);
}

async function saveSchedule(e, m) {
  e.preventDefault();
  const schedule = scheduleFrom(e.target);
  if (!schedule) {
    message(t('admin.schedule.missing'), true);
    return;
  }
  try {
    await api('PUT', `/api/meetings/${encodeURIComponent(m.id)}/schedule`, schedule);
    message(t('admin.schedule.saved', { title: m.title }));
    await loadMeetings();
  } catch (err) {
    message(apiErrorText(err), true);
  }
}

/** Publishing the record of an ended meeting: what to publish, and the public page. */
function publishForm(m) {
  const p = m.publication || {};
  const id = (name) => `p-${name}-${m.id}`;
  const box = (name, checked) =>
    h('div', { class: 'check' },
      h('input', { type: 'checkbox', id: id(name), name, checked: !!checked }),
      h('label', { for: id(name) }, t(`admin.publish.${name}`)));
  return h(
    'form',
    { class: 'stack publish-form', novalidate: true, on: { submit: (e) => publish(e, m) } },
    h('fieldset', {},
      h('legend', {}, t('admin.publish')),
      box('record', p.record),
      box('rejections', p.rejections),
      box('comments', p.comments),
      h('p', { class: 'hint' }, t('admin.publish.noReplay'))),
    h('div', { class: 'actions' }, h('button', { type: 'submit', 'data-fkey': `publish-${m.id}` }, t('admin.publish.save'))),
    p.record ? h('p', {}, h('a', { href: `/m/${encodeURIComponent(m.id)}/record` }, t('admin.publish.open'))) : null,
  );
}

async function publish(e, m) {
  e.preventDefault();
  const f = e.target.elements;
  const body = { record: f.record.checked, rejections: f.rejections.checked, comments: f.comments.checked, replay: false };
  try {
    await api('POST', `/api/meetings/${encodeURIComponent(m.id)}/publish`, body);
    message(t(body.record ? 'admin.publish.done' : 'admin.publish.withdrawn', { title: m.title }));
    await loadMeetings();
  } catch (err) {
    message(apiErrorText(err), true);
  }
}

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
    const texts = {
      delete: () => t('admin.delete.confirm', { title: m.title }),
      end: () => t('admin.end.confirm', { title: m.title }),
      links: () => t('admin.newLinks.confirm'),
    };
    const confirmations = {
      delete: () => act('confirm-delete', t('admin.delete.yes'), () => remove(m), 'danger'),
      end: () => act('confirm-end', t('admin.end.yes'), () => { confirming = null; setStatus(m, 'end'); }, 'danger'),
      links: () => act('confirm-links', t('admin.confirm.yes'), () => newLinks(m), 'primary'),
    };
    const text = texts[confirming.kind]();
    actions = h(
      'div',
      { class: 'confirm', role: 'group', 'aria-labelledby': `confirm-${m.id}` },
      h('p', { id: `confirm-${m.id}`, class: 'confirm-text' }, text),
      h(
        'div',
        { class: 'actions' },
        confirmations[confirming.kind](),
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
      m.status === 'live' ? act('end', t('admin.end'), () => ask(m, 'end')) : null,
      act('links', t('admin.newLinks'), () => ask(m, 'links')),
      act('export-json', t('admin.exportJson'), () => exportRecord(m, 'json')),
      act('export-csv', t('admin.exportCsv'), () => exportRecord(m, 'csv')),
      act('export-questions', t('admin.exportQuestions'), () => exportRecord(m, 'questions')),
      act('export-foi', t('admin.exportFoi'), () => exportRecord(m, 'foi')),
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
      m.schedule ? h('span', { class: 'starts' }, ` · ${t('admin.col.starts')}: ${dateTime(m.schedule.starts_at)}`) : null,
    ),
    m.viewer_url ? h('p', {}, h('a', { href: absolute(m.viewer_url), 'aria-describedby': titleId }, t('admin.open'))) : null,
    actions,
    m.status !== 'ended' ? scheduleForm(m) : publishForm(m),
  );
}

function ask(m, kind) {
  confirming = { id: m.id, kind };
  m._from = kind;
  renderMeetings();
  $(`[data-fkey="confirm-${kind}-${m.id}"]`)?.focus();
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
    const path = {
      json: 'export.json',
      csv: 'export.csv',
      questions: `questions.csv?lang=${getLang()}`,
      foi: `questions.csv?audience=foi&lang=${getLang()}`,
    }[kind];
    const res = await api('GET', `/api/meetings/${encodeURIComponent(m.id)}/${path}`);
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
    const schedule = scheduleFrom($('#create-form'));
    const res = await api('POST', '/api/meetings', { title, ...(schedule || {}) });
    const body = await res.json();
    input.value = '';
    input.dispatchEvent(new Event('input'));
    for (const name of ['starts', 'ends', 'description', 'agenda']) $('#create-form').elements[name].value = '';
    $('#create-form').elements.qa_before_start.checked = false;
    links = { ...body, title: body.title || title };
    message(t('admin.create.done', { title: links.title }));
    renderLinks(true);
    await loadMeetings();
  } catch (err) {
    message(apiErrorText(err), true);
  }
});
