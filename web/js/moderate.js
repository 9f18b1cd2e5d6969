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
  session = joinMeeting({ meeting, token, render });
  model = session.model;
  wire();
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

  renderControls(mt);
  renderPolls(m);
  renderComments(m);
  renderParticipants(m);
}

function participant(m, id) {
  return m.participants.get(id) || { id, muted: false, banned: false };
}

/** Buttons for one question, by its status. */
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
  const approve = () => btn('approve', t('act.approve'), () => run({ type: 'approve_question', question: q.id }), { cls: 'primary' });
  const reject = () => btn('reject', t('act.reject'), () => openReject(q), { cls: 'danger' });
  const merge = () => btn('merge', t('act.merge'), () => openMerge(q));
  const queue = () => btn('queue', t('act.queue'), () => run({ type: 'queue_question', question: q.id }));
  const onAir = () => btn('onair', t('act.onAir'), () => run({ type: 'put_on_air', question: q.id }), { cls: 'primary' });
  const answered = () => btn('answered', t('act.answered'), () => run({ type: 'mark_answered', question: q.id }));
  switch (q.status) {
    case 'pending':
      return [approve(), reject(), merge()];
    case 'approved':
      return [queue(), onAir(), answered(), reject(), merge()];
    case 'queued':
      return [
        btn('up', t('act.up'), () => run({ type: 'queue_question', question: q.id, position: index - 1 }), { disabled: index <= 0 }),
        btn('down', t('act.down'), () => run({ type: 'queue_question', question: q.id, position: index + 1 }), { disabled: index >= queueLen - 1 }),
        onAir(),
        btn('unqueue', t('act.unqueue'), () => run({ type: 'unqueue_question', question: q.id })),
        reject(),
        merge(),
      ];
    case 'on_air':
      return [answered()];
    case 'rejected':
      return [approve()];
    default:
      return [];
  }
}

function authorActions(id, m, key) {
  if (!id) return null;
  const p = participant(m, id);
  const btn = (action, label, cmd) =>
    h('button', {
      type: 'button',
      class: 'small',
      'data-fkey': `${action}-${key}`,
      'data-action': action,
      on: { click: () => run({ type: cmd, participant: id }) },
    }, label);
  return h(
    'span',
    { class: 'author-actions' },
    p.muted ? btn('unmute', t('act.unmute'), 'unmute_participant') : btn('mute', t('act.mute'), 'mute_participant'),
    p.banned ? btn('unban', t('act.unban'), 'unban_participant') : btn('ban', t('act.ban'), 'ban_participant'),
  );
}

function flags(p) {
  return [p.muted ? t('mod.muted') : null, p.banned ? t('mod.banned') : null].filter(Boolean).join(', ') || null;
}

function questionCard(q, m, index = -1, queueLen = 0) {
  const p = participant(m, q.author);
  return h(
    'li',
    { class: `q mod-q status-${q.status}`, 'data-qid': q.id },
    questionText(q, 'mq'),
    metaLine(
      t('mod.author', { name: staffAuthor(q) }),
      flags(p),
      askedAt(q),
      votesText(q.votes),
      ['rejected', 'merged', 'answered', 'ended', 'queued', 'on_air'].includes(q.status) ? statusText(q) : null,
    ),
    h('div', { class: 'q-actions' }, questionActions(q, m, index, queueLen)),
    q.author ? h('div', { class: 'q-author-row' }, authorActions(q.author, m, `q${q.id}`)) : null,
  );
}

function cardSig(q, m, extra = []) {
  const p = participant(m, q.author);
  return sig(q, p.muted, p.banned, ...extra);
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
        const hide = c.hidden
          ? h('p', { class: 'flag' }, t('mod.hidden'))
          : h('button', {
            type: 'button',
            class: 'small',
            'data-fkey': `hide-${c.id}`,
            'data-action': 'hide',
            on: { click: () => run({ type: 'hide_comment', comment: c.id }) },
          }, t('act.hide'));
        return commentItem(
          c,
          h('div', { class: 'c-actions' }, flags(p) ? h('span', { class: 'flag' }, flags(p)) : null, hide, authorActions(c.author, m, `c${c.id}`)),
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
        authorActions(p.id, m, `p${p.id}`),
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

function openReject(q) {
  rememberOpener();
  rejecting = q.id;
  setText($('#reject-q'), q.text);
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
    if (await run({ type: 'reject_question', question: rejecting, reason }, $('#reject-msg'))) {
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
