// The citizen's page: /m/{meeting} — the live picture (viewer-media.js), questions, votes, polls
// and chat.

import { $, announcer, charCount, h, setText, syncList } from './dom.js';
import { errorText, t } from './i18n.js';
import { initStage, stageStatus } from './viewer-media.js';
import { charCounter, formMessage, initPage, joinMeeting, lengthError, meetingFromPath, showFatal } from './page.js';
import {
  askedAt, authorName, commentItem, metaLine, onlineText, pollIsOpen, pollResults, pollTotal,
  questionText, sig, statusBadge, statusText, stickToBottom, votesText,
} from './views.js';

const MAX_QUESTION = 500;
const MAX_COMMENT = 300;
const MAX_NAME = 40;
const MAX_COMMENTS_SHOWN = 200;
const OPEN = ['approved', 'queued', 'on_air'];

const meeting = meetingFromPath();
let session = null;
const busyVotes = new Set();
const busyPolls = new Set();
/** The option picked in a poll's form before voting, kept if the form is redrawn. */
const pollChoice = new Map();

initPage(() => session && session.rerender());

const announce = announcer($('#announcer'));
const askOk = charCounter($('#ask-text'), $('#ask-count'), MAX_QUESTION, charCount);
const chatOk = charCounter($('#chat-text'), $('#chat-count'), MAX_COMMENT, charCount);
charCounter($('#name-input'), $('#name-count'), MAX_NAME, charCount);
let nameDirty = false;
$('#name-input').addEventListener('input', () => {
  nameDirty = true;
});

if (!meeting) {
  showFatal(t('err.no_meeting'));
} else {
  session = joinMeeting({ meeting, before: beforeFrame, render });
  initStage(meeting);
  wireForms();
}

/** Announces what is new to screen-reader users; never for a snapshot (first join, resync). */
function beforeFrame(msg, model) {
  if (!model.ready || msg.t !== 'event') return;
  for (const q of msg.questions || []) {
    const old = model.questions.get(q.id);
    if (q.mine) {
      const lookup = (id) => (msg.questions || []).find((x) => x.id === id) || model.questions.get(id);
      if (old && old.status !== q.status) announce('mine', t('announce.mine', { status: statusText(q, lookup) }));
    } else if (msg.kind === 'question_approved' && q.status === 'approved' && (!old || !OPEN.includes(old.status))) {
      announce('question', t('announce.question', { text: q.text }), (n) => t('announce.questions', { n }));
    }
  }
  if (msg.kind === 'comment_posted' && msg.comment && !model.comments.has(msg.comment.id)) {
    const c = msg.comment;
    announce('comment', t('announce.comment', { name: c.author_name || t('c.noName'), text: c.text }), (n) =>
      t('announce.comments', { n }),
    );
  }
  if (msg.poll) {
    const old = model.polls.get(msg.poll.id);
    if (msg.kind === 'poll_opened' && !old) announce('poll', t('announce.poll', { text: msg.poll.question }));
    else if (msg.kind === 'poll_closed' && old?.open) announce('poll', t('announce.pollClosed', { text: msg.poll.question }));
  }
  const onAir = msg.meeting?.on_air;
  if (onAir !== undefined && onAir !== null && onAir !== model.meeting?.on_air) {
    const q = (msg.questions || []).find((x) => x.id === onAir) || model.questions.get(onAir);
    if (q) announce('onair', t('announce.onAir', { text: q.text }));
  }
}

function render(model, conn) {
  const m = model.meeting;
  if (!m) return;
  const you = model.you || { muted: false, banned: false };
  // Closed for good (removed, meeting deleted): nothing can be sent any more.
  const gone = conn.state === 'closed';

  setText($('#meeting-title'), m.title);
  document.title = `${m.title} – townhall`;
  statusBadge($('#meeting-status'), m.status);
  stageStatus(you.banned || gone ? 'closed' : m.status);
  onlineText($('#online'), model.online);

  // One line about the state of the meeting and of this citizen.
  let note = '';
  if (you.banned) note = t('viewer.banned');
  else if (m.status === 'ended') note = t('viewer.ended');
  else if (you.muted) note = t('viewer.muted');
  else if (m.status === 'scheduled') note = t('viewer.scheduled');
  setText($('#state-note'), note);
  $('#state-note').hidden = !note;

  $('#announcement').hidden = !m.announcement;
  setText($('#announcement-text'), m.announcement || '');

  renderOnAir(model);
  renderPolls(model, you, gone);
  renderQuestions(model);
  renderMine(model);
  renderChat(model, you, gone);

  // The ask form.
  const canAsk = !gone && m.status !== 'ended' && m.qa_open && !you.muted && !you.banned;
  $('#qa-closed').hidden = m.qa_open || m.status === 'ended';
  for (const el of $('#ask-form').elements) el.disabled = !canAsk;

  // The name form.
  const nameInput = $('#name-input');
  if (!nameDirty && document.activeElement !== nameInput) {
    nameInput.value = you.name || '';
    nameInput.dispatchEvent(new Event('input'));
    nameDirty = false;
  }
  for (const el of $('#name-form').elements) el.disabled = gone || you.banned || m.status === 'ended';
}

function renderOnAir(model) {
  const q = model.onAir();
  const box = $('#on-air');
  syncList(box, q ? [q] : [null], {
    key: (x) => (x ? `q${x.id}` : 'empty'),
    sig: (x) => sig(x),
    render: (x) =>
      x
        ? h(
          'article',
          { class: 'q q-on-air', 'data-qid': x.id },
          questionText(x, 'onair-text'),
          metaLine(authorName(x), votesText(x.votes)),
        )
        : h('p', { class: 'empty' }, t('viewer.onAir.empty')),
  });
}

/** Polls, open ones first, then newest first: a form to vote while one is open and not yet
 *  answered here, else the results (with this citizen's choice marked). */
function renderPolls(model, you, gone) {
  const polls = model.pollList();
  $('#polls-card').hidden = polls.length === 0;
  const state = (p) => {
    const open = pollIsOpen(p, model.meeting);
    const mine = model.answered.get(p.id);
    return { open, mine, vote: open && mine === undefined && !you.banned && !gone };
  };
  syncList($('#polls'), polls, {
    key: (p) => p.id,
    sig: (p) => {
      const s = state(p);
      // The form shows no counts: it is kept (focus, choice) while the counts change.
      return s.vote ? sig('vote', p.id, p.question, p.options) : sig('results', p, s.open, s.mine);
    },
    render: (p) => {
      const s = state(p);
      return s.vote ? pollForm(p) : pollResultsItem(p, s.open, s.mine);
    },
  });
}

function pollBadge(open) {
  return h('span', { class: open ? 'badge poll-badge' : 'badge poll-badge closed' }, t(open ? 'poll.open' : 'poll.closed'));
}

function pollForm(p) {
  const qid = `poll-q-${p.id}`;
  const choice = pollChoice.get(p.id);
  const form = h(
    'form',
    { class: 'poll-form stack', novalidate: true, on: { submit: (e) => { e.preventDefault(); answerPoll(p.id, form); } } },
    h(
      'fieldset',
      {},
      h('legend', { id: qid, class: 'poll-question' }, p.question),
      h(
        'div',
        { class: 'radios' },
        p.options.map((option, i) =>
          h(
            'div',
            { class: 'check' },
            h('input', {
              type: 'radio',
              name: `poll-${p.id}`,
              id: `poll-${p.id}-${i}`,
              value: String(i),
              checked: choice === i,
              'data-fkey': `poll-${p.id}-${i}`,
              on: { change: () => pollChoice.set(p.id, i) },
            }),
            h('label', { for: `poll-${p.id}-${i}` }, option),
          ),
        ),
      ),
    ),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', 'aria-describedby': qid, 'data-fkey': `poll-${p.id}` }, t('poll.vote')),
    ),
  );
  return h('li', { class: 'poll open', 'data-pid': p.id }, h('p', { class: 'poll-meta' }, pollBadge(true)), form);
}

function pollResultsItem(p, open, mine) {
  return h(
    'li',
    { class: open ? 'poll open' : 'poll closed', 'data-pid': p.id },
    // Focus lands here when the vote button it replaces had it.
    h('h3', { class: 'poll-question', id: `poll-q-${p.id}`, tabindex: '-1', 'data-fkey': `poll-${p.id}` }, p.question),
    h(
      'p',
      { class: 'poll-meta' },
      pollBadge(open),
      ' ',
      h('span', {}, open ? t(mine === undefined ? 'poll.liveNote' : 'poll.answeredNote') : t('poll.closedNote')),
    ),
    pollResults(p, mine),
    h('p', { class: 'poll-total' }, pollTotal(p)),
  );
}

async function answerPoll(id, form) {
  const msg = $('#poll-msg');
  const checked = form.querySelector('input[type=radio]:checked');
  if (!checked) {
    formMessage(msg, t('poll.choose'), true);
    form.querySelector('input[type=radio]').focus();
    return;
  }
  if (busyPolls.has(id)) return;
  busyPolls.add(id);
  const button = form.querySelector('button[type=submit]');
  button.setAttribute('aria-disabled', 'true');
  try {
    await session.conn.send({ type: 'answer_poll', poll: id, option: Number(checked.value) });
    pollChoice.delete(id);
    formMessage(msg, t('poll.thanks'));
  } catch (e) {
    formMessage(msg, errorText(e.code, e.retryAfterMs), true);
  } finally {
    busyPolls.delete(id);
    button.removeAttribute('aria-disabled');
    session.rerender();
  }
}

function renderQuestions(model) {
  const list = model.openByVotes();
  const queued = new Set(model.meeting.queue || []);
  $('#questions-empty').hidden = list.length > 0;
  syncList($('#questions'), list, {
    key: (q) => q.id,
    sig: (q) => sig(q, model.voted.has(q.id), busyVotes.has(q.id), queued.has(q.id)),
    render: (q) => questionItem(q, model.voted.has(q.id), queued.has(q.id)),
  });

  const answered = model.byStatus('answered').sort((a, b) => b.id - a.id);
  $('#answered-box').hidden = answered.length === 0;
  setText($('#answered-summary'), t('viewer.answered', { n: answered.length }));
  syncList($('#answered'), answered, {
    key: (q) => q.id,
    sig: (q) => sig(q),
    render: (q) =>
      h('li', { class: 'q', 'data-qid': q.id }, questionText(q, 'ans-text'), metaLine(authorName(q), votesText(q.votes))),
  });
}

function questionItem(q, voted, queued) {
  const textId = `qt-${q.id}`;
  const button = h(
    'button',
    {
      type: 'button',
      class: 'vote',
      'aria-pressed': String(voted),
      'aria-describedby': textId,
      'data-fkey': `vote-${q.id}`,
      disabled: busyVotes.has(q.id),
      on: { click: () => toggleVote(q.id, voted) },
    },
    h('span', { class: 'vote-icon', 'aria-hidden': 'true' }, '▲'),
    ' ',
    voted ? t('q.upvoted') : t('q.upvote'),
  );
  return h(
    'li',
    { class: voted ? 'q voted' : 'q', 'data-qid': q.id },
    questionText(q),
    metaLine(authorName(q), askedAt(q), queued ? t('q.status.queued') : null, q.mine ? t('q.mine') : null),
    h('div', { class: 'q-actions' }, button, h('span', { class: 'votes' }, votesText(q.votes))),
  );
}

async function toggleVote(id, voted) {
  if (busyVotes.has(id)) return;
  busyVotes.add(id);
  session.rerender();
  try {
    await session.conn.send({ type: voted ? 'retract_upvote' : 'upvote', question: id });
  } catch (e) {
    // Already in the wanted state: the model catches up from the server's `voted` frame.
    if (e.code !== 'already_voted' && e.code !== 'not_voted') formMessage($('#vote-msg'), errorText(e.code, e.retryAfterMs), true);
  } finally {
    busyVotes.delete(id);
    session.rerender();
  }
}

function renderMine(model) {
  const mine = model.mine();
  $('#mine-empty').hidden = mine.length > 0;
  syncList($('#mine'), mine, {
    key: (q) => q.id,
    sig: (q) => sig(q, model.question(q.merged_into)?.text),
    render: (q) =>
      h(
        'li',
        { class: `q mine status-${q.status}`, 'data-qid': q.id },
        questionText(q, 'mine-text'),
        h('p', { class: `q-status status-${q.status}` }, statusText(q, (id) => model.question(id))),
        metaLine(authorName(q), askedAt(q), OPEN.includes(q.status) ? votesText(q.votes) : null),
      ),
  });
}

function renderChat(model, you, gone) {
  const m = model.meeting;
  const slow = m.slow_mode_secs > 0 && m.status === 'live' && m.chat_open;
  $('#slow-note').hidden = !slow;
  setText($('#slow-note'), slow ? t('viewer.slowMode', { n: m.slow_mode_secs }) : '');

  let closed = '';
  if (!m.chat_open) closed = t('viewer.chat.closed');
  else if (m.status === 'scheduled') closed = t('viewer.chat.notLive');
  $('#chat-closed').hidden = !closed || m.status === 'ended';
  setText($('#chat-closed'), closed);

  const comments = model.commentList().slice(-MAX_COMMENTS_SHOWN);
  $('#comments-empty').hidden = comments.length > 0;
  const list = $('#comments');
  list.hidden = comments.length === 0;
  stickToBottom(list, () =>
    syncList(list, comments, { key: (c) => c.id, sig: (c) => sig(c), render: (c) => commentItem(c) }),
  );

  const canChat = !gone && m.status === 'live' && m.chat_open && !you.muted && !you.banned;
  for (const el of $('#chat-form').elements) el.disabled = !canChat;
}

/** A form that sends its text field as a command: checks the length first, disables the
 *  button while sending, clears the field on success and shows `sent` (or the error). */
function textForm(formSel, fieldSel, msgSel, lengthOk, build) {
  $(formSel).addEventListener('submit', async (e) => {
    e.preventDefault();
    const field = $(fieldSel);
    const msg = $(msgSel);
    if (!lengthOk()) {
      formMessage(msg, lengthError(field.value), true);
      field.focus();
      return;
    }
    const submit = e.submitter || $(`${formSel} button[type=submit]`);
    submit.disabled = true;
    try {
      const { command, sent } = build(field.value);
      await session.conn.send(command);
      field.value = '';
      field.dispatchEvent(new Event('input'));
      formMessage(msg, sent);
    } catch (err) {
      formMessage(msg, errorText(err.code, err.retryAfterMs), true);
    } finally {
      submit.disabled = false;
      session.rerender();
    }
  });
}

function wireForms() {
  textForm('#ask-form', '#ask-text', '#ask-msg', askOk, (text) => ({
    command: { type: 'ask_question', text, anonymous: $('#ask-anon').checked },
    sent: t('viewer.ask.sent'),
  }));
  textForm('#chat-form', '#chat-text', '#chat-msg', chatOk, (text) => ({
    command: { type: 'post_comment', text },
    sent: '',
  }));
  // Enter sends a comment; Shift+Enter makes a new line.
  $('#chat-text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('#chat-form').requestSubmit();
    }
  });

  $('#name-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('#name-input');
    const msg = $('#name-msg');
    if (charCount(input.value) > MAX_NAME) {
      formMessage(msg, errorText('text_too_long'), true);
      return;
    }
    try {
      await session.conn.send({ type: 'set_name', name: input.value });
      nameDirty = false;
      formMessage(msg, input.value.trim() ? t('viewer.name.saved') : t('viewer.name.cleared'));
    } catch (err) {
      formMessage(msg, errorText(err.code, err.retryAfterMs), true);
    }
  });
}
