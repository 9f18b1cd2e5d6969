// Pieces of UI shared by the viewer, moderator and studio pages.

import { h, setText } from './dom.js';
import { getLang, t, timeOfDay, tn } from './i18n.js';

export function statusBadge(el, status) {
  setText(el, t(`status.${status}`));
  el.className = `badge status-${status}`;
}

/** "N online"; `null` shows nothing (a meeting that is over has nobody "online"). */
export function onlineText(el, n) {
  setText(el, n === null || n === undefined ? '' : tn('online', n));
}

/** The name shown with a question in public (viewer, studio): "anonymous" when asked so, even
 *  where the view carries the name (staff, the author), else the name or "no name". */
export function authorName(q) {
  if (q.anonymous) return t('q.anonymous');
  return q.author_name || t('q.noName');
}

/** Staff see the name and, if asked anonymously, that it is hidden from citizens. */
export function staffAuthor(q) {
  const name = q.author_name || t('q.noName');
  return q.anonymous ? `${name} (${t('q.anonymous').toLowerCase()})` : name;
}

export function statusText(q) {
  if (q.status === 'rejected' && q.reason) return t('q.rejectedReason', { reason: q.reason });
  return t(`q.status.${q.status}`);
}

export function votesText(n) {
  return tn('q.votes', n);
}

/** The paragraph with a question's text (as written) and an id others can point to. */
export function questionText(q, idPrefix = 'qt', cls = 'q-text') {
  return h('p', { class: `${cls} prewrap`, id: `${idPrefix}-${q.id}` }, q.text);
}

export function metaLine(...parts) {
  const items = parts.filter((p) => p !== null && p !== undefined && p !== '');
  const out = [];
  items.forEach((p, i) => {
    if (i) out.push(h('span', { class: 'sep', 'aria-hidden': 'true' }, ' · '));
    out.push(typeof p === 'string' ? h('span', {}, p) : p);
  });
  return h('p', { class: 'q-meta' }, out);
}

export function askedAt(q) {
  return h('time', { datetime: new Date(q.asked_at).toISOString() }, timeOfDay(q.asked_at));
}

/** Signature helper: changes whenever what an item shows could change. */
export function sig(...parts) {
  return JSON.stringify([getLang(), ...parts]);
}

/** Short, stable form of a participant id for staff ("p-3f9a…"). */
export function shortId(id) {
  const s = String(id);
  return s.length > 10 ? `${s.slice(0, 8)}…` : s;
}

export function commentAuthor(c) {
  return c.author_name || t('c.noName');
}

export function commentItem(c, extra = null) {
  return h(
    'li',
    { class: c.hidden ? 'comment hidden-comment' : 'comment', 'data-cid': c.id },
    h(
      'p',
      { class: 'c-meta' },
      h('span', { class: 'c-author' }, commentAuthor(c)),
      ' ',
      h('time', { datetime: new Date(c.at).toISOString() }, timeOfDay(c.at)),
    ),
    h('p', { class: 'c-text prewrap' }, c.text),
    extra,
  );
}

/** Keeps a scrollable list pinned to its end when the reader was already at the end. */
export function stickToBottom(list, update) {
  const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
  update();
  if (atEnd) list.scrollTop = list.scrollHeight;
}

/** Whether a poll still takes answers: open, and the meeting not over (ending a meeting does not
 *  close its polls, but nothing can be answered any more). */
export function pollIsOpen(p, meeting) {
  return p.open && meeting?.status === 'live';
}

const sep = () => h('span', { class: 'visually-hidden' }, ', ');

/** Whole-number percentages of `counts` (0 when nobody answered yet). */
export function pollPercents(counts) {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((n) => (total ? Math.round((n * 100) / total) : 0));
}

export function pollTotal(p) {
  return tn('poll.total', p.counts.reduce((a, b) => a + b, 0));
}

/**
 * A poll's results as a list: per option its text, the count and percentage as text, and a bar
 * hidden from screen readers (the text says the same). `mine` is the option this participant
 * chose, marked in words, not by colour alone. Bar widths are set through the CSSOM, which the
 * CSP allows (a style attribute would not be).
 */
export function pollResults(p, mine = undefined, cls = '') {
  const pcts = pollPercents(p.counts);
  return h(
    'ul',
    { class: ['poll-results', mine === undefined ? '' : 'has-mine', cls].filter(Boolean).join(' '), 'aria-label': t('poll.results') },
    p.options.map((option, i) => {
      const chosen = mine === i;
      const fill = h('span', { class: 'poll-fill' });
      fill.style.width = `${pcts[i]}%`;
      const n = p.counts[i] ?? 0;
      return h(
        'li',
        { class: chosen ? 'poll-result mine' : 'poll-result', 'data-option': i },
        h(
          'p',
          { class: 'poll-result-line' },
          h('span', { class: 'poll-option' }, option),
          // Screen readers run spans together; the hidden commas make them pause.
          chosen ? [sep(), h('span', { class: 'poll-mine' }, h('span', { 'aria-hidden': 'true' }, '✓ '), t('poll.yourChoice'))] : null,
          sep(),
          h('span', { class: 'poll-count' }, t(n === 1 ? 'poll.count.one' : 'poll.count', { n, pct: pcts[i] })),
        ),
        h('span', { class: 'poll-bar', 'aria-hidden': 'true' }, fill),
      );
    }),
  );
}
