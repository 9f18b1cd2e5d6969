// What every page shares: the language switch, the connection banner, the fatal notice, and
// joining a meeting over the WebSocket with a live view model.

import { Connection, FATAL_CODES } from './connection.js';
import { ViewModel } from './model.js';
import { applyStatic, errorText, getLang, onLangChange, setLang, t } from './i18n.js';
import { $, $$, batcher, charCount, setText } from './dom.js';

/** Sets up language and static texts; `rerender` runs after a language switch. */
export function initPage(rerender) {
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
  conn.addEventListener('state', schedule);
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

/** Puts a message in a form's status line; `error` marks it as a problem. */
export function formMessage(el, text, error = false) {
  el.classList.toggle('error', error);
  el.textContent = '';
  // Separate task so that repeating the same message is announced again.
  setTimeout(() => setText(el, text), 30);
}
