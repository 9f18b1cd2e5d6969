// The moderator's page: /m/{meeting}/moderate#TOKEN

import { $, $$, charCount, h, setText, syncList } from './dom.js';
import { errorText, t } from './i18n.js';
import {
  charCounter,
  formMessage,
  initPage,
  joinMeeting,
  lengthError,
  meetingFromPath,
  showFatal,
  staffMeeting,
  tokenFromHash,
} from './page.js';
import {
  askedAt, commentItem, metaLine, onlineText, pollIsOpen, pollResults, pollTotal, questionText,
  shortId, sig, staffAuthor, statusBadge, statusText, stickToBottom, votesText,
} from './views.js';

const SLOW_CHOICES = [0, 10, 30, 60];
const REJECT_PRESETS = ['offtopic', 'duplicate', 'answered', 'language', 'personal'];
const MAX_REASON = 200;
const MAX_ANNOUNCEMENT = 300;
const MAX_COMMENT = 300;
const MODERATOR_ROLES = ['moderator', 'organizer'];
// Poll limits of the server (decide.rs, text.rs).
const MAX_POLL_QUESTION = 200;
const MAX_POLL_OPTION = 80;
const MIN_POLL_OPTIONS = 2;
const MAX_POLL_OPTIONS = 6;

const meeting = meetingFromPath();
const token = tokenFromHash();
let session = null;
let model = null;
let pollBusy = false;
/** Merge suggestions per pending question (advice from the server, not part of the view). */
const suggestions = new Map();
/** The word filter in force (staff see it in the snapshot and in `word_filter_set`). */
let wordFilter = null;
/** Pending questions selected for a bulk decision. */
const selected = new Set();
/** Bulk reject: the questions the reject dialog is for. */
let rejectingMany = null;
/** Numbers the ids of the poll form's option fields. */
let optionSeq = 0;

initPage(() => {
  buildPresets();
  labelPollOptions();
  if (session) session.rerender();
});

if (!meeting) showFatal(t('err.no_meeting'));
else if (!token) showFatal(t('mod.noToken'));
else {
  session = joinMeeting({ meeting, token, render, before: beforeFrame });
  model = session.model;
  wire();
}

/** Follows what the model does not keep: merge suggestions and the word filter. */
function beforeFrame(msg) {
  if (msg.t === 'snapshot') {
    // The server sends every current suggestion right after a snapshot.
    suggestions.clear();
    wordFilter = msg.word_filter || null;
  } else if (msg.t === 'suggestions') {
    for (const item of msg.items || []) suggestions.set(item.question, item.similar || []);
  } else if (msg.t === 'event' && msg.word_filter) {
    wordFilter = msg.word_filter;
  }
}

/** Sends a command; reports a refusal in the page's status line. Resolves to true on ack. */
async function run(cmd, msgEl = $('#mod-msg')) {
  try {
    await session.conn.send(cmd);
    return true;
  } catch (e) {
    formMessage(msgEl, errorText(e.code, e.retryAfterMs), true);
    return false;
  }
}

function render(m) {
  const mt = staffMeeting(m, MODERATOR_ROLES, 'mod.wrongRole', session);
  if (!mt) return;

  setText($('#meeting-title'), t('mod.heading', { title: mt.title }));
  document.title = `${t('mod.title')}: ${mt.title} – ${t('app.name')}`;
  statusBadge($('#meeting-status'), mt.status);
  onlineText($('#online'), m.online);
  const pending = m.byStatus('pending').sort((a, b) => a.id - b.id);
  setText($('#pending-count'), t('mod.pendingCount', { n: pending.length }));
  for (const id of [...selected]) if (!pending.some((q) => q.id === id)) selected.delete(id);

  renderOnAir(m);
  renderQueue(m);
  renderList($('#pending'), $('#pending-empty'), pending, m);
  setText($('#pending-h'), t('mod.pending', { n: pending.length }));
  const approved = m.byStatus('approved').sort((a, b) => b.votes - a.votes || a.id - b.id);
  renderList($('#approved'), $('#approved-empty'), approved, m);
  setText($('#approved-h'), t('mod.approved', { n: approved.length }));
  const history = m.byStatus('answered', 'ended', 'rejected', 'merged').sort((a, b) => b.id - a.id);
  setText($('#history-summary'), t('mod.history', { n: history.length }));
  $('#history-box').hidden = history.length === 0;
  renderList($('#history'), null, history, m);

  renderBulk(pending, m);
  renderControls(mt);
  renderFilter();
  renderPolls(m);
  renderComments(m);
  renderParticipants(m);
}

function participant(m, id) {
  return m.participants.get(id) || { id, muted: false, banned: false };
}

/** Who may decide `q`: nobody else once a moderator claimed it (the server refuses them too). */
function claimedByOther(q, m) {
  return !!q.claimed_by && q.claimed_by !== m.participant;
}

function moderatorName(m, id) {
  if (id === m.participant) return t('mod.claim.you');
  return m.participants.get(id)?.name || t('mod.claim.other');
}

/** The best suggestion that can still be merged into: not decided away meanwhile. */
function topSuggestion(q, m) {
  for (const s of suggestions.get(q.id) || []) {
    const target = m.questions.get(s.id);
    if (target && !['rejected', 'merged', 'answered'].includes(target.status)) return { ...s, target };
  }
  return null;
}

function mergeInto(q, into) {
  return run({ type: 'merge_question', question: q.id, into });
}

/** One main action per card, by status; the rest go in its menu. */
function questionActions(q, m, index = -1, queueLen = 0) {
  const desc = `mq-${q.id}`;
  const btn = (action, label, onClick, extra = {}) =>
    h('button', {
      type: 'button',
      class: extra.cls || '',
      'data-fkey': `${action}-${q.id}`,
      'data-action': action,
      'aria-describedby': desc,
      'aria-disabled': extra.disabled ? 'true' : null,
      on: { click: (e) => (e.currentTarget.getAttribute('aria-disabled') === 'true' ? null : onClick()) },
    }, label);
  const locked = claimedByOther(q, m);
  const approve = () => btn('approve', t('act.approve'), () => run({ type: 'approve_question', question: q.id }), { cls: 'primary', disabled: locked });
  const reject = () => btn('reject', t('act.reject'), () => openReject(q), { cls: 'danger', disabled: locked });
  const merge = () => btn('merge', t('act.merge'), () => openMerge(q), { disabled: locked });
  const queue = () => btn('queue', t('act.queue'), () => run({ type: 'queue_question', question: q.id }), { cls: 'primary' });
  const onAir = (cls = 'primary') => btn('onair', t('act.onAir'), () => run({ type: 'put_on_air', question: q.id }), { cls });
  const answered = (cls = '') => btn('answered', t('act.answered'), () => run({ type: 'mark_answered', question: q.id }), { cls });
  const claim = () => (q.claimed_by
    ? btn('release', t('act.release'), () => run({ type: 'release_question', question: q.id }))
    : btn('claim', t('act.claim'), () => run({ type: 'claim_question', question: q.id })));
  switch (q.status) {
    case 'pending':
      return { main: approve(), more: [claim(), reject(), merge()] };
    case 'approved':
      return { main: queue(), more: [onAir(''), answered(), reject(), merge()] };
    case 'queued':
      // Reordering stays beside the main action: it is what one does to a queue.
      return {
        main: onAir(),
        inline: [
          btn('up', t('act.up'), () => run({ type: 'queue_question', question: q.id, position: index - 1 }), { disabled: index <= 0, cls: 'small' }),
          btn('down', t('act.down'), () => run({ type: 'queue_question', question: q.id, position: index + 1 }), { disabled: index >= queueLen - 1, cls: 'small' }),
        ],
        more: [
          btn('unqueue', t('act.unqueue'), () => run({ type: 'unqueue_question', question: q.id })),
          reject(),
          merge(),
        ],
      };
    case 'on_air':
      return { main: answered('primary'), more: [] };
    case 'rejected':
      return { main: approve(), more: [] };
    default:
      return { main: null, more: [] };
  }
}

function authorActions(id, m, key) {
  if (!id) return [];
  const p = participant(m, id);
  const btn = (action, label, onClick) =>
    h('button', {
      type: 'button',
      class: 'small',
      'data-fkey': `${action}-${key}`,
      'data-action': action,
      on: { click: onClick },
    }, label);
  const who = p.name || shortId(id);
  return [
    p.muted
      ? btn('unmute', t('act.unmute'), () => run({ type: 'unmute_participant', participant: id }))
      : btn('mute', t('act.mute'), () => run({ type: 'mute_participant', participant: id })),
    p.banned
      ? btn('unban', t('act.unban'), () => run({ type: 'unban_participant', participant: id }))
      : btn('ban', t('act.ban'), () => confirmThen({
        title: t('confirm.ban.title'),
        text: t('confirm.ban.text', { name: who }),
        ok: t('act.ban'),
        cmd: { type: 'ban_participant', participant: id },
      })),
  ];
}

/** A menu of secondary actions (a disclosure: keyboard and screen readers know it). */
function menu(items, key, label) {
  const list = items.filter(Boolean);
  if (!list.length) return null;
  return h(
    'details',
    { class: 'q-menu', 'data-menu': key },
    h('summary', { 'aria-label': label, 'data-fkey': `menu-${key}` }, t('act.more')),
    h('div', { class: 'menu-items' }, ...list),
  );
}

function flags(p) {
  return [p.muted ? t('mod.muted') : null, p.banned ? t('mod.banned') : null].filter(Boolean).join(', ') || null;
}

function questionCard(q, m, index = -1, queueLen = 0) {
  const p = participant(m, q.author);
  const { main, more, inline = [] } = questionActions(q, m, index, queueLen);
  const pending = q.status === 'pending';
  const tags = [
    q.claimed_by && pending
      ? h('li', { class: `tag claim${q.claimed_by === m.participant ? ' mine' : ''}` }, t('mod.claimedBy', { name: moderatorName(m, q.claimed_by) }))
      : null,
    q.flagged ? h('li', { class: 'tag filtered' }, t('mod.flagged', { word: q.flagged })) : null,
  ].filter(Boolean);
  const top = pending ? topSuggestion(q, m) : null;
  const suggestion = top
    ? h(
      'p',
      { class: 'suggestion' },
      h('span', { class: 's-text' }, t('mod.suggest', { id: top.id, text: short(top.target.text), score: top.score })),
      h('button', {
        type: 'button',
        class: 'small',
        'data-action': 'merge-suggested',
        'data-fkey': `merge-suggested-${q.id}`,
        'aria-describedby': `mq-${q.id}`,
        'aria-disabled': claimedByOther(q, m) ? 'true' : null,
        on: { click: (e) => (e.currentTarget.getAttribute('aria-disabled') === 'true' ? null : mergeInto(q, top.id)) },
      }, t('act.mergeInto', { id: top.id })),
    )
    : null;
  const select = pending
    ? h('input', {
      type: 'checkbox',
      class: 'q-select',
      'data-action': 'select',
      'aria-label': t('mod.select', { id: q.id }),
      checked: selected.has(q.id),
      on: {
        change: (e) => {
          if (e.currentTarget.checked) selected.add(q.id);
          else selected.delete(q.id);
          session.rerender();
        },
      },
    })
    : null;
  return h(
    'li',
    {
      class: `q mod-q status-${q.status}${selected.has(q.id) ? ' selected' : ''}`,
      'data-qid': q.id,
      'data-fkey': `card-${q.id}`,
      tabindex: '0',
      'aria-labelledby': `mq-${q.id}`,
    },
    h('div', { class: 'q-head' }, select, questionText(q, 'mq')),
    tags.length ? h('ul', { class: 'q-tags' }, ...tags) : null,
    suggestion,
    metaLine(
      t('mod.author', { name: staffAuthor(q) }),
      flags(p),
      askedAt(q),
      votesText(q.votes),
      ['rejected', 'merged', 'answered', 'ended', 'queued', 'on_air'].includes(q.status) ? statusText(q, (id) => m.question(id)) : null,
    ),
    h(
      'div',
      { class: 'q-actions' },
      main,
      ...inline,
      menu([...more, ...authorActions(q.author, m, `q${q.id}`)], `q${q.id}`, t('act.moreFor', { id: q.id })),
    ),
  );
}

function short(text, n = 90) {
  return text.length > n ? `${text.slice(0, n)}…` : text;
}

function cardSig(q, m, extra = []) {
  const p = participant(m, q.author);
  const top = q.status === 'pending' ? topSuggestion(q, m) : null;
  const claimer = q.claimed_by ? m.participants.get(q.claimed_by)?.name : null;
  return sig(q, p.muted, p.banned, p.name, selected.has(q.id), top?.id, top?.score, claimer, m.participant, ...extra);
}

function renderList(list, empty, questions, m) {
  if (empty) empty.hidden = questions.length > 0;
  syncList(list, questions, {
    key: (q) => q.id,
    sig: (q) => cardSig(q, m),
    render: (q) => questionCard(q, m),
  });
}

function renderQueue(m) {
  const queue = m.queue();
  $('#queue-empty').hidden = queue.length > 0;
  syncList($('#queue'), queue, {
    key: (q) => q.id,
    sig: (q) => cardSig(q, m, [queue.indexOf(q), queue.length]),
    render: (q) => questionCard(q, m, queue.indexOf(q), queue.length),
  });
}

function renderOnAir(m) {
  const q = m.onAir();
  syncList($('#on-air'), q ? [q] : [null], {
    key: (x) => (x ? `q${x.id}` : 'empty'),
    sig: (x) => (x ? cardSig(x, m) : sig()),
    render: (x) => (x ? h('ol', { class: 'qlist' }, questionCard(x, m)) : h('p', { class: 'empty' }, t('mod.onAir.empty'))),
  });
}

/** The bulk bar: select all pending questions others have not claimed; approve or reject them. */
function renderBulk(pending, m) {
  const free = pending.filter((q) => !claimedByOther(q, m));
  const n = selected.size;
  $('#bulk-bar').hidden = pending.length === 0;
  setText($('#bulk-approve'), t('mod.bulk.approve', { n }));
  setText($('#bulk-reject'), t('mod.bulk.reject', { n }));
  $('#bulk-approve').disabled = n === 0;
  $('#bulk-reject').disabled = n === 0;
  const all = free.length > 0 && free.every((q) => selected.has(q.id));
  setText($('#bulk-all'), all ? t('mod.bulk.none') : t('mod.bulk.all'));
  $('#bulk-all').onclick = () => {
    if (all) selected.clear();
    else for (const q of free) selected.add(q.id);
    session.rerender();
  };
}

function renderFilter() {
  const box = $('#filter-words');
  const want = (wordFilter || []).join('\n');
  // Never overwrite what the moderator is typing.
  if (document.activeElement !== box && box.dataset.shown !== want) {
    box.value = want;
    box.dataset.shown = want;
  }
}

/** Asks before an action that cannot simply be undone (removing a participant). */
let confirming = null;
function confirmThen({ title, text, ok, cmd }) {
  rememberOpener();
  confirming = cmd;
  setText($('#confirm-h'), title);
  setText($('#confirm-text'), text);
  setText($('#confirm-ok'), ok);
  setText($('#confirm-msg'), '');
  $('#confirm-dialog').showModal();
  $('#confirm-dialog .dialog-cancel').focus();
}

function renderControls(mt) {
  setText($('#qa-state'), mt.qa_open ? t('mod.qa.open') : t('mod.qa.closed'));
  setText($('#qa-toggle'), mt.qa_open ? t('mod.qa.doClose') : t('mod.qa.doOpen'));
  setText($('#chat-state'), mt.chat_open ? t('mod.chat.open') : t('mod.chat.closed'));
  setText($('#chat-toggle'), mt.chat_open ? t('mod.chat.doClose') : t('mod.chat.doOpen'));

  const select = $('#slow-mode');
  const choices = SLOW_CHOICES.includes(mt.slow_mode_secs) ? SLOW_CHOICES : [...SLOW_CHOICES, mt.slow_mode_secs].sort((a, b) => a - b);
  const want = sig(choices);
  if (select.dataset.sig !== want) {
    select.replaceChildren(
      ...choices.map((n) => h('option', { value: String(n) }, n === 0 ? t('mod.slow.off') : t('mod.slow.secs', { n }))),
    );
    select.dataset.sig = want;
  }
  if (document.activeElement !== select || !select.dataset.busy) select.value = String(mt.slow_mode_secs);

  setText($('#announce-current'), mt.announcement ? t('mod.announce.current', { text: mt.announcement }) : t('mod.announce.none'));
  $('#announce-clear').disabled = !mt.announcement;
}

function renderPolls(m) {
  const mt = m.meeting;
  const live = mt.status === 'live';
  // Polls open only while the meeting is live: they can be prepared before, not after.
  $('#poll-form').hidden = mt.status === 'ended';
  $('#poll-not-live').hidden = live;
  $('#poll-form button[type=submit]').disabled = !live || pollBusy;

  const polls = m.pollList();
  $('#polls-empty').hidden = polls.length > 0;
  syncList($('#polls'), polls, {
    key: (p) => p.id,
    sig: (p) => sig(p, pollIsOpen(p, mt)),
    render: (p) => {
      const open = pollIsOpen(p, mt);
      const qid = `mpoll-q-${p.id}`;
      return h(
        'li',
        { class: open ? 'poll open' : 'poll closed', 'data-pid': p.id },
        // When the close button goes, its focus lands on the question.
        h('h4', { class: 'poll-question', id: qid, tabindex: open ? null : '-1', 'data-fkey': open ? null : `poll-${p.id}` }, p.question),
        h(
          'p',
          { class: 'poll-meta' },
          h('span', { class: open ? 'badge poll-badge' : 'badge poll-badge closed' }, t(open ? 'poll.open' : 'poll.closed')),
          ' ',
          h('span', {}, pollTotal(p)),
        ),
        pollResults(p),
        open
          ? h('div', { class: 'actions' }, h('button', {
            type: 'button',
            'data-action': 'close-poll',
            'data-fkey': `poll-${p.id}`,
            'aria-describedby': qid,
            on: { click: () => run({ type: 'close_poll', poll: p.id }) },
          }, t('mod.poll.close')))
          : null,
      );
    },
  });
}

// The form to open a poll: a question and 2–6 option fields, added and removed by buttons.

function addPollOption(focus = false) {
  const id = `poll-opt-${++optionSeq}`;
  const input = h('input', { type: 'text', id, class: 'poll-option-input', autocomplete: 'off', 'aria-describedby': 'poll-options-help' });
  const row = h(
    'li',
    { class: 'poll-option-row' },
    h('label', { for: id }),
    h(
      'div',
      { class: 'poll-option-line' },
      input,
      h('button', { type: 'button', class: 'small', 'data-action': 'remove-option', on: { click: () => removePollOption(row) } }),
    ),
  );
  $('#poll-options').append(row);
  labelPollOptions();
  if (focus) input.focus();
}

function removePollOption(row) {
  const rows = [...$('#poll-options').children];
  if (rows.length <= MIN_POLL_OPTIONS) return;
  const i = rows.indexOf(row);
  row.remove();
  labelPollOptions();
  // Focus the option that took its place, else the one before.
  const left = [...$('#poll-options').children];
  left[Math.min(i, left.length - 1)].querySelector('input').focus();
}

/** Numbers the option fields ("Option 2") and enables add/remove within 2–6 options. */
function labelPollOptions() {
  const rows = [...$('#poll-options').children];
  rows.forEach((row, i) => {
    setText(row.querySelector('label'), t('mod.poll.option', { n: i + 1 }));
    const remove = row.querySelector('[data-action="remove-option"]');
    setText(remove, t('mod.poll.remove'));
    remove.setAttribute('aria-label', t('mod.poll.removeLabel', { n: i + 1 }));
    remove.disabled = rows.length <= MIN_POLL_OPTIONS;
  });
  $('#poll-add').disabled = rows.length >= MAX_POLL_OPTIONS;
}

function resetPollForm() {
  $('#poll-question').value = '';
  $('#poll-question').dispatchEvent(new Event('input'));
  $('#poll-options').replaceChildren();
  for (let i = 0; i < MIN_POLL_OPTIONS; i++) addPollOption();
}

function wirePollForm() {
  const questionOk = charCounter($('#poll-question'), $('#poll-question-count'), MAX_POLL_QUESTION, charCount);
  resetPollForm();
  $('#poll-add').addEventListener('click', () => {
    if ($('#poll-options').children.length < MAX_POLL_OPTIONS) addPollOption(true);
  });
  $('#poll-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const msg = $('#poll-form-msg');
    const question = $('#poll-question');
    if (!questionOk()) {
      formMessage(msg, lengthError(question.value), true);
      question.focus();
      return;
    }
    const inputs = $$('#poll-options input');
    for (const input of inputs) input.setAttribute('aria-invalid', 'false');
    const long = inputs.findIndex((input) => charCount(input.value) > MAX_POLL_OPTION);
    if (long >= 0) {
      inputs[long].setAttribute('aria-invalid', 'true');
      formMessage(msg, t('mod.poll.optionTooLong', { n: long + 1, max: MAX_POLL_OPTION }), true);
      inputs[long].focus();
      return;
    }
    // Empty fields are skipped; the server checks the rest again (NFC, distinct, 2–6).
    const options = inputs.map((input) => input.value.trim()).filter(Boolean);
    if (options.length < MIN_POLL_OPTIONS || new Set(options).size !== options.length) {
      formMessage(msg, t('mod.poll.needOptions'), true);
      (inputs.find((input) => !input.value.trim()) || inputs[0]).focus();
      return;
    }
    pollBusy = true;
    session.rerender();
    const ok = await run({ type: 'open_poll', question: question.value, options }, msg);
    pollBusy = false;
    session.rerender();
    if (ok) {
      resetPollForm();
      formMessage(msg, t('mod.poll.started'));
    }
  });
}

function renderComments(m) {
  const comments = m.commentList().slice(-200);
  $('#comments-empty').hidden = comments.length > 0;
  const list = $('#comments');
  list.hidden = comments.length === 0;
  stickToBottom(list, () =>
    syncList(list, comments, {
      key: (c) => c.id,
      sig: (c) => {
        const p = participant(m, c.author);
        return sig(c, p.muted, p.banned);
      },
      render: (c) => {
        const p = participant(m, c.author);
        const toggle = (action, label, cmd) => h('button', {
          type: 'button',
          class: 'small',
          'data-fkey': `hide-${c.id}`,
          'data-action': action,
          on: { click: () => run(cmd) },
        }, label);
        // A hidden comment can be shown again (undo); a held one released.
        const hide = c.hidden
          ? [
            h('p', { class: c.held ? 'held' : 'flag' }, c.held ? t('mod.held', { word: c.held }) : t('mod.hidden')),
            toggle('unhide', c.held ? t('act.releaseComment') : t('act.unhide'), { type: 'unhide_comment', comment: c.id }),
          ]
          : [toggle('hide', t('act.hide'), { type: 'hide_comment', comment: c.id })];
        return commentItem(
          c,
          h('div', { class: 'c-actions' }, flags(p) ? h('span', { class: 'flag' }, flags(p)) : null, ...hide, ...authorActions(c.author, m, `c${c.id}`)),
        );
      },
    }),
  );
}

function renderParticipants(m) {
  const people = [...m.participants.values()].sort((a, b) => (a.name || '~').localeCompare(b.name || '~') || a.id.localeCompare(b.id));
  $('#participants-empty').hidden = people.length > 0;
  setText($('#participants-h'), t('mod.participants', { n: people.length }));
  syncList($('#participants'), people, {
    key: (p) => p.id,
    sig: (p) => sig(p),
    render: (p) =>
      h(
        'li',
        { class: 'participant', 'data-pid': p.id },
        h('span', { class: 'p-name' }, p.name || t('q.noName')),
        ' ',
        h('span', { class: 'p-id' }, shortId(p.id)),
        flags(p) ? h('span', { class: 'flag' }, flags(p)) : null,
        h('span', { class: 'author-actions' }, ...authorActions(p.id, m, `p${p.id}`)),
      ),
  });
}

// Dialogs: reject with a reason, merge into another question.

let rejecting = null;
let merging = null;
/** data-fkey of the button that opened a dialog, to give focus back on close. */
let opener = null;

function rememberOpener() {
  opener = document.activeElement?.dataset?.fkey || null;
}

/** After a dialog: focus its opener if it still exists, else the next question's same button,
 *  else the main region, so keyboard users never land on <body>. */
function restoreFocus() {
  setTimeout(() => {
    if (document.activeElement && document.activeElement !== document.body) return;
    const again = opener && document.querySelector(`[data-fkey="${CSS.escape(opener)}"]`);
    (again || $('#main')).focus();
  }, 0);
}

function buildPresets() {
  const box = $('#reject-presets');
  const checked = box.querySelector('input:checked')?.value || REJECT_PRESETS[0];
  box.replaceChildren(
    ...[...REJECT_PRESETS, 'custom'].map((key) =>
      h(
        'div',
        { class: 'check' },
        h('input', { type: 'radio', name: 'reason', id: `reason-${key}`, value: key, checked: key === checked }),
        h('label', { for: `reason-${key}` }, t(`reject.r.${key}`)),
      ),
    ),
  );
}

function openReject(q, many = null) {
  rememberOpener();
  rejecting = q ? q.id : null;
  rejectingMany = many;
  setText($('#reject-q'), many ? t('mod.bulk.rejecting', { n: many.length }) : q.text);
  setText($('#reject-msg'), '');
  $('#reject-custom').value = '';
  $('#reject-custom').dispatchEvent(new Event('input'));
  $(`#reason-${REJECT_PRESETS[0]}`).checked = true;
  $('#reject-dialog').showModal();
  $(`#reason-${REJECT_PRESETS[0]}`).focus();
}

function openMerge(q) {
  rememberOpener();
  merging = q.id;
  setText($('#merge-q'), q.text);
  setText($('#merge-msg'), '');
  // The server's rule (decide.rs): not into itself, a rejected or merged question; and a
  // question citizens have seen (approved or queued) only into one they have seen too.
  const seen = ['approved', 'queued', 'on_air', 'answered', 'ended'];
  const targets = [...model.questions.values()]
    .filter((x) => x.id !== q.id && !['rejected', 'merged'].includes(x.status))
    .filter((x) => q.status === 'pending' || seen.includes(x.status))
    .sort((a, b) => a.id - b.id);
  const select = $('#merge-into');
  select.replaceChildren(
    ...targets.map((x) => {
      const text = x.text.length > 90 ? `${x.text.slice(0, 90)}…` : x.text;
      return h('option', { value: String(x.id) }, `#${x.id} ${text} (${statusText(x)})`);
    }),
  );
  const none = targets.length === 0;
  select.disabled = none;
  $('#merge-form button[type=submit]').disabled = none;
  if (none) setText($('#merge-msg'), t('merge.none'));
  $('#merge-dialog').showModal();
  (none ? $('#merge-dialog .dialog-cancel') : select).focus();
}

function wire() {
  buildPresets();
  wirePollForm();
  charCounter($('#reject-custom'), $('#reject-count'), MAX_REASON, charCount);
  charCounter($('#announce-text'), $('#announce-count'), MAX_ANNOUNCEMENT, charCount);
  const chatOk = charCounter($('#chat-text'), $('#chat-count'), MAX_COMMENT, charCount);

  for (const d of document.querySelectorAll('dialog')) d.addEventListener('close', restoreFocus);
  for (const b of document.querySelectorAll('.dialog-cancel')) {
    b.addEventListener('click', () => b.closest('dialog').close());
  }
  $('#reject-custom').addEventListener('input', () => {
    if ($('#reject-custom').value.trim()) $('#reason-custom').checked = true;
  });
  $('#reject-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const choice = $('#reject-presets input:checked')?.value || 'custom';
    const reason = choice === 'custom' ? $('#reject-custom').value : t(`reject.r.${choice}`);
    if (!charCount(reason)) {
      formMessage($('#reject-msg'), t('reject.needReason'), true);
      $('#reject-custom').focus();
      return;
    }
    const cmd = rejectingMany
      ? { type: 'reject_questions', questions: rejectingMany, reason }
      : { type: 'reject_question', question: rejecting, reason };
    if (await run(cmd, $('#reject-msg'))) {
      if (rejectingMany) selected.clear();
      $('#reject-dialog').close();
    }
  });
  $('#merge-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const into = Number($('#merge-into').value);
    if (!into) return;
    if (await run({ type: 'merge_question', question: merging, into }, $('#merge-msg'))) {
      $('#merge-dialog').close();
    }
  });

  $('#confirm-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (confirming && (await run(confirming, $('#confirm-msg')))) $('#confirm-dialog').close();
  });
  $('#bulk-approve').addEventListener('click', async () => {
    const questions = [...selected];
    if (questions.length && (await run({ type: 'approve_questions', questions }))) selected.clear();
    session.rerender();
  });
  $('#bulk-reject').addEventListener('click', () => {
    if (selected.size) openReject(null, [...selected]);
  });
  $('#name-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (await run({ type: 'set_name', name: $('#mod-name').value })) formMessage($('#mod-msg'), t('mod.name.saved'));
  });
  $('#filter-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const words = $('#filter-words').value.split('\n').map((w) => w.trim()).filter(Boolean);
    if (await run({ type: 'set_word_filter', words }, $('#filter-msg'))) formMessage($('#filter-msg'), t('mod.filter.saved'));
  });
  $('#filter-defaults').addEventListener('click', async () => {
    if (await run({ type: 'set_word_filter', words: null }, $('#filter-msg'))) {
      $('#filter-words').dataset.shown = '';
      formMessage($('#filter-msg'), t('mod.filter.saved'));
    }
  });
  document.addEventListener('keydown', onKey);

  $('#qa-toggle').addEventListener('click', () => run({ type: 'set_qa_open', open: !model.meeting.qa_open }));
  $('#chat-toggle').addEventListener('click', () => run({ type: 'set_chat_open', open: !model.meeting.chat_open }));
  $('#slow-mode').addEventListener('change', async (e) => {
    const select = e.currentTarget;
    select.dataset.busy = '1';
    const ok = await run({ type: 'set_slow_mode', seconds: Number(select.value) });
    delete select.dataset.busy;
    if (!ok) select.value = String(model.meeting.slow_mode_secs);
  });
  $('#announce-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = $('#announce-text');
    if (!charCount(text.value)) {
      formMessage($('#mod-msg'), errorText('text_empty'), true);
      text.focus();
      return;
    }
    if (await run({ type: 'pin_announcement', text: text.value })) {
      text.value = '';
      text.dispatchEvent(new Event('input'));
    }
  });
  $('#announce-clear').addEventListener('click', () => run({ type: 'pin_announcement', text: '' }));

  $('#chat-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = $('#chat-text');
    if (!chatOk()) {
      formMessage($('#mod-msg'), lengthError(text.value), true);
      return;
    }
    if (await run({ type: 'post_comment', text: text.value })) {
      text.value = '';
      text.dispatchEvent(new Event('input'));
    }
  });
}

// Keyboard shortcuts on the focused question card: A approve, R reject, M merge into the
// suggestion (or choose), C claim/release, X select, J/N next, K/P previous. Never while typing
// or with a modifier, and never inside a dialog.

function cards() {
  return [...document.querySelectorAll('#workspace li.mod-q')];
}

function focusCard(card) {
  if (!card) return;
  card.focus();
  card.scrollIntoView({ block: 'nearest' });
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
  const el = document.activeElement;
  if (!el || el.closest('dialog') || el.matches('input, textarea, select, [contenteditable]')) return;
  const card = el.closest('li.mod-q');
  const key = e.key.toLowerCase();
  const list = cards();
  if (['j', 'n', 'k', 'p'].includes(key)) {
    const i = card ? list.indexOf(card) : -1;
    const next = ['j', 'n'].includes(key) ? list[i + 1] || list[0] : list[i - 1] || list[list.length - 1];
    e.preventDefault();
    focusCard(next);
    return;
  }
  if (!card || !model) return;
  const q = model.questions.get(Number(card.dataset.qid));
  if (!q) return;
  const after = () => {
    // The card may leave this list (approved, merged): focus the one that took its place.
    const i = list.indexOf(card);
    setTimeout(() => {
      if (document.activeElement && document.activeElement !== document.body && document.contains(document.activeElement)) return;
      const now = cards();
      focusCard(now[Math.min(i, now.length - 1)] || $('#main'));
    }, 50);
  };
  const locked = claimedByOther(q, model);
  switch (key) {
    case 'a':
      if (['pending', 'rejected'].includes(q.status) && !locked) {
        e.preventDefault();
        run({ type: 'approve_question', question: q.id }).then(after);
      }
      break;
    case 'r':
      if (['pending', 'approved', 'queued'].includes(q.status) && !locked) {
        e.preventDefault();
        openReject(q);
      }
      break;
    case 'm': {
      if (!['pending', 'approved', 'queued'].includes(q.status) || locked) break;
      e.preventDefault();
      const top = q.status === 'pending' ? topSuggestion(q, model) : null;
      if (top) mergeInto(q, top.id).then(after);
      else openMerge(q);
      break;
    }
    case 'c':
      if (q.status === 'pending' && !locked) {
        e.preventDefault();
        run({ type: q.claimed_by ? 'release_question' : 'claim_question', question: q.id });
      }
      break;
    case 'x':
      if (q.status === 'pending') {
        e.preventDefault();
        if (selected.has(q.id)) selected.delete(q.id);
        else selected.add(q.id);
        session.rerender();
      }
      break;
    default:
      break;
  }
}
