// What every page shares: the language switch, the connection banner, the fatal notice, and
// joining a meeting over the WebSocket with a live view model.

import { Connection, FATAL_CODES } from './connection.js';
import { ViewModel } from './model.js';
import { applyStatic, errorText, getLang, onLangChange, setAppName, setLang, t } from './i18n.js';
import { $, $$, batcher, charCount, setText } from './dom.js';

/** Sets up language and static texts; `rerender` runs after a language switch. */
export function initPage(rerender) {
  setAppName(document.querySelector('meta[name="application-name"]')?.content);
  document.documentElement.lang = getLang();
  applyStatic();
  const switches = $$('[data-lang]');
  const mark = () => {
    for (const b of switches) b.setAttribute('aria-pressed', String(b.dataset.lang === getLang()));
  };
  for (const b of switches) b.addEventListener('click', () => setLang(b.dataset.lang));
  mark();
  onLangChange(() => {
    applyStatic();
    mark();
    if (rerender) rerender();
  });
}

/** The meeting id from /m/{id}/… */
export function meetingFromPath() {
  const parts = location.pathname.split('/').filter(Boolean);
  if (parts[0] !== 'm' || !parts[1]) return null;
  try {
    return decodeURIComponent(parts[1]);
  } catch {
    return null;
  }
}

/** The secret token from the URL fragment (#TOKEN), never sent to the server in a URL. */
export function tokenFromHash() {
  const raw = location.hash.replace(/^#/, '');
  if (!raw) return null;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** Shows a message that ends the page's work (bad link, removed, meeting gone). */
export function showFatal(text) {
  const box = $('#fatal');
  if (!box) return;
  setText(box, text);
  box.hidden = false;
}

/** Dead ends of the citizen's page, by the code that closed the connection for good. */
export const DEAD_ENDS = { banned: 'removed', no_meeting: 'notfound', meeting_deleted: 'deleted' };

/**
 * Connects to the meeting and keeps a ViewModel in sync.
 * Hooks: before(msg, model) runs before a frame is folded (to compare old and new),
 * render(model, conn) runs batched after changes and on a language switch.
 */
/** For the staff pages: the meeting to render if this link gave one of `roles`, else shows
 *  `wrongRoleKey`, hides the workspace, stops the connection and returns null. */
export function staffMeeting(m, roles, wrongRoleKey, session) {
  if (!m.role) return null;
  if (!roles.includes(m.role)) {
    showFatal(t(wrongRoleKey));
    $('#workspace').hidden = true;
    session.conn.stop();
    return null;
  }
  if (!m.meeting) return null;
  $('#workspace').hidden = false;
  return m.meeting;
}

export function joinMeeting({ meeting, token, before, render, onNotice }) {
  const model = new ViewModel();
  const conn = new Connection({ meeting, token });
  const banner = $('#conn-banner');
  const status = $('#conn-status');

  const paintConnection = () => {
    const bannerKey = { offline: 'banner.offline', reconnecting: 'banner.reconnecting' }[conn.state];
    if (banner) setText(banner, bannerKey ? t(bannerKey) : '');
    if (status) setText(status, conn.state === 'connecting' && !model.ready ? t('conn.connecting') : '');
    document.body.dataset.conn = conn.state;
    if (conn.state === 'closed' && conn.closeCode && conn.closeCode !== 'stopped') {
      showFatal(errorText(conn.closeCode));
    }
  };
  const schedule = batcher(() => {
    paintConnection();
    render(model, conn);
  });

  conn.addEventListener('welcome', (e) => {
    // Resumed as someone else (the session cookie changed): the view is not ours; start over.
    if (model.participant && model.participant !== e.detail.participant && conn.lastOffset !== null) {
      model.reset({ offset: 0, meeting: null, you: null, questions: [], comments: [], voted: [], participants: [], polls: [], answered: [] });
      model.offset = 0;
      conn.rejoinFresh();
      return;
    }
    model.welcome(e.detail);
    schedule();
  });
  conn.addEventListener('frame', (e) => {
    const msg = e.detail;
    if (before) before(msg, model);
    model.apply(msg);
    schedule();
  });
  conn.addEventListener('state', () => {
    if (conn.state === 'open') clearConnectionMessages();
    schedule();
  });
  conn.addEventListener('notice', (e) => {
    const { code } = e.detail;
    if (FATAL_CODES.has(code)) showFatal(errorText(code));
    if (onNotice) onNotice(e.detail);
    schedule();
  });
  onLangChange(schedule);
  conn.start();
  // Exposed for debugging and for the browser tests' waits; holds no secrets beyond the page's.
  window.townhall = { model, conn };
  return { model, conn, rerender: schedule };
}

/**
 * Wires a form field to a live character counter ("12/500 characters"); returns a function that
 * tells whether the text is within 1..max characters.
 */
export function charCounter(field, counter, max, countFn) {
  const update = () => {
    const n = countFn(field.value);
    setText(counter, t('chars', { n, max }));
    counter.classList.toggle('over', n > max);
    field.setAttribute('aria-invalid', String(n > max));
  };
  field.addEventListener('input', update);
  onLangChange(update);
  update();
  return () => {
    const n = countFn(field.value);
    return n > 0 && n <= max;
  };
}

/** The error text for a field that `charCounter` found not ok: empty or too long. */
export function lengthError(value) {
  return errorText(charCount(value) ? 'text_too_long' : 'text_empty');
}

/** Error codes that say the connection was not there: such a message is wrong once it is back. */
const CONNECTION_CODES = new Set(['offline', 'disconnected', 'timeout']);
const SUCCESS_MS = 6_000;
const ERROR_MS = 20_000;
/** The messages on show: element → { make, code, timer }, re-translated on a language switch. */
const shown = new Map();

/**
 * Puts a message in a form's status line (a polite live region): announced once, cleared by
 * itself (success after 6 s, an error after 20 s, when the user edits the form, or — for "no
 * connection" — once the connection is back), and re-translated when the language changes.
 * `text` is a string or a function that makes it in the current language; `error` marks a
 * problem, `code` is the error code it came from.
 */
export function formMessage(el, text, error = false, code = null) {
  const make = typeof text === 'function' ? text : () => text;
  clearMessage(el);
  el.classList.toggle('error', error);
  el.textContent = '';
  if (!make()) return;
  const entry = { make, code, timer: 0 };
  shown.set(el, entry);
  // Separate task so that repeating the same message is announced again.
  entry.timer = setTimeout(() => {
    setText(el, make());
    entry.timer = setTimeout(() => clearMessage(el), error ? ERROR_MS : SUCCESS_MS);
  }, 30);
  const form = el.closest('form');
  if (form && error) {
    const edited = () => clearMessage(el);
    form.addEventListener('input', edited, { once: true });
    entry.untie = () => form.removeEventListener('input', edited);
  }
}

/** The text of an error (a CommandError or anything with `code`) in a form's status line. */
export function formError(el, err) {
  formMessage(el, () => errorText(err.code, err.retryAfterMs), true, err.code);
}

export function clearMessage(el) {
  const entry = shown.get(el);
  if (!entry) return;
  clearTimeout(entry.timer);
  if (entry.untie) entry.untie();
  shown.delete(el);
  el.textContent = '';
  el.classList.remove('error');
}

/** Once the connection is back, "no connection" messages are no longer true. */
export function clearConnectionMessages() {
  for (const [el, entry] of [...shown]) if (CONNECTION_CODES.has(entry.code)) clearMessage(el);
}

onLangChange(() => {
  for (const [el, entry] of shown) if (el.textContent) setText(el, entry.make());
});
