// The citizen's page: /m/{meeting} — video first: the live picture (viewer-media.js) on top and,
// on a phone, kept in view while Questions, Chat and Poll (tabs.js) scroll under it. The page has
// one view at a time (body[data-view]): loading, scheduled, live, ended, or a dead end (removed,
// notfound, deleted) where nothing but the explanation is shown.

import { $, announcer, charCount, h, setText, syncList } from './dom.js';
import { t } from './i18n.js';
import { initStage, stageStatus } from './viewer-media.js';
import { initTabs } from './tabs.js';
import {
  DEAD_ENDS, charCounter, formError, formMessage, initPage, joinMeeting, lengthError, meetingFromPath, showFatal,
} from './page.js';
import { initWaiting } from './waiting.js';
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
let waiting = null;
const busyVotes = new Set();
const busyPolls = new Set();
/** The option picked in a poll's form before voting, kept if the form is redrawn. */
const pollChoice = new Map();

initPage(() => session && session.rerender());

const tabs = initTabs($('#tabs'));
/** The view last rendered, to act once when it changes (focus, stopping the picture). */
let lastView = 'loading';
const announce = announcer($('#announcer'));
const askOk = charCounter($('#ask-text'), $('#ask-count'), MAX_QUESTION, charCount);
const chatOk = charCounter($('#chat-text'), $('#chat-count'), MAX_COMMENT, charCount);
charCounter($('#name-input'), $('#name-count'), MAX_NAME, charCount);
let nameDirty = false;
$('#name-input').addEventListener('input', () => {
  nameDirty = true;
});

if (!meeting) {
  deadEnd('notfound');
} else {
  waiting = initWaiting(meeting, () => session && session.rerender());
  session = joinMeeting({ meeting, before: beforeFrame, render });
  initStage(meeting);
  wireForms();
}

/** Announces what is new to screen-reader users; never for a snapshot (first join, resync). */
function beforeFrame(msg, model) {
  if (msg.t === 'event' && msg.kind === 'meeting_scheduled') waiting?.reload();
  if (!model.ready || msg.t !== 'event') return;
  for (const q of msg.questions || []) {
    const old = model.questions.get(q.id);
    if (q.mine) {
      if (old && old.status !== q.status) announce('mine', t('announce.mine', { status: statusText(q) }));
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

/** Which view the page shows: a dead end when the connection was closed for good (or this
 *  citizen was removed), else the meeting's own state. */
function viewOf(model, conn) {
  if (model.you?.banned) return 'removed';
  if (conn.state === 'closed') return DEAD_ENDS[conn.closeCode] || 'closed';
  const m = model.meeting;
  if (!m) return 'loading';
  if (m.status === 'ended') return 'ended';
  return m.status === 'live' ? 'live' : 'scheduled';
}

/** Replaces the meeting with one explanation: removed, no such meeting, deleted. The heading
 *  takes the focus if the focus was in the part that disappears. */
function deadEnd(view, code) {
  const box = $('#dead-end');
  const wasHidden = box.hidden;
  document.body.dataset.view = view;
  setText($('#dead-end-h'), t(`deadEnd.${view}.title`));
  showFatal(t(`deadEnd.${view}.text`, { reason: code ? t(`err.${code}`) : '' }));
  setText($('#dead-end-more'), t(`deadEnd.${view}.more`));
  box.hidden = false;
  const ui = $('#meeting-ui');
  const focusLost = ui.contains(document.activeElement);
  ui.hidden = true;
  stageStatus('closed');
  document.title = `${t(`deadEnd.${view}.title`)} – ${t('app.name')}`;
  if (wasHidden && focusLost) $('#dead-end-h').focus();
}

function render(model, conn) {
  const view = viewOf(model, conn);
  const changed = view !== lastView;
  lastView = view;
  if (view in DEAD_END_VIEWS) {
    deadEnd(view, conn.closeCode);
    return;
  }
  const m = model.meeting;
  if (!m) return;
  document.body.dataset.view = view;
  const you = model.you || { muted: false, banned: false };
  // Closed for good for another reason (stopped): nothing can be sent any more.
  const gone = conn.state === 'closed';
  const ended = view === 'ended';

  setText($('#meeting-title'), m.title);
  document.title = `${m.title} – ${t('app.name')}`;
  statusBadge($('#meeting-status'), m.status);
  stageStatus(gone ? 'closed' : m.status);
  // A count of people online is meaningless once the meeting is over.
  onlineText($('#online'), ended ? null : model.online);

  $('#ended').hidden = !ended;
  $('#ended-links').hidden = $('#ended-links').children.length === 0;
  $('#waiting').hidden = view !== 'scheduled';
  // The form the citizen was in disappears at the end: the focus goes to what replaced it.
  const active = document.activeElement;
  if (changed && ended && (!active || active === document.body || active.closest('[hidden]'))) $('#ended-h').focus();

  // One line about this citizen, when it matters.
  let note = '';
  if (!ended && you.muted) note = t('viewer.muted');
  setText($('#state-note'), note);
  $('#state-note').hidden = !note;

  $('#announcement').hidden = !m.announcement || ended;
  setText($('#announcement-text'), m.announcement || '');

  renderOnAir(model, ended);
  renderPolls(model, you, gone);
  renderQuestions(model, ended);
  renderMine(model);
  renderChat(model, you, gone);

  // The ask form: gone after the end; disabled (with the reason beside it) while it cannot work
  // (before the start, the schedule may hold questions back).
  $('#ask-box').hidden = ended;
  waiting?.update(m.status);
  const held = !!waiting?.holdsQuestions(m.status);
  const canAsk = !gone && !ended && m.qa_open && !held && !you.muted;
  setText($('#qa-closed'), t(held ? 'wait.qaAtStart' : 'viewer.qaClosed'));
  $('#qa-closed').hidden = (m.qa_open && !held) || ended;
  for (const el of [$('#ask-text'), $('#ask-anon'), $('#ask-submit')]) el.disabled = !canAsk;

  // The name: kept while the citizen types, else what the server has.
  const nameInput = $('#name-input');
  if (!nameDirty && document.activeElement !== nameInput) {
    nameInput.value = you.name || '';
    nameInput.dispatchEvent(new Event('input'));
    nameDirty = false;
  }
  for (const el of [nameInput, $('#name-save')]) el.disabled = gone || ended;
  setText($('#chat-as'), you.name ? t('viewer.chat.as', { name: you.name }) : t('viewer.chat.asNone'));

  tabs.setCount('tab-questions', model.openByVotes().length);
  tabs.setCount('tab-chat', model.comments.size);
  tabs.setCount('tab-polls', model.polls.size);
  tabs.setAvailable('tab-polls', model.polls.size > 0);
}

const DEAD_END_VIEWS = { removed: 1, notfound: 1, deleted: 1, closed: 1 };

function renderOnAir(model, ended) {
  const q = model.onAir();
  // Shown while a question is on air: "nothing on air" would only push the rest down.
  $('#on-air-card').hidden = ended || !q;
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
    formMessage(msg, () => t('poll.choose'), true);
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
    formMessage(msg, () => t('poll.thanks'));
  } catch (e) {
    formError(msg, e);
  } finally {
    busyPolls.delete(id);
    button.removeAttribute('aria-disabled');
    session.rerender();
  }
}

function renderQuestions(model, ended) {
  const list = model.openByVotes();
  const queued = new Set(model.meeting.queue || []);
  $('#questions-empty').hidden = list.length > 0;
  // After the end nothing can be voted on: the open questions are read-only, with their votes.
  setText($('#open-h'), t(ended ? 'viewer.open.ended' : 'viewer.open'));
  $('#questions-hint').hidden = ended;
  syncList($('#questions'), list, {
    key: (q) => q.id,
    sig: (q) => sig(q, model.voted.has(q.id), busyVotes.has(q.id), queued.has(q.id), ended),
    render: (q) => questionItem(q, model.voted.has(q.id), queued.has(q.id), ended),
  });

  const answered = model.byStatus('answered', 'ended').sort((a, b) => b.id - a.id);
  $('#answered-box').hidden = answered.length === 0;
  setText($('#answered-summary'), t('viewer.answered', { n: answered.length }));
  syncList($('#answered'), answered, {
    key: (q) => q.id,
    sig: (q) => sig(q),
    render: (q) =>
      h('li', { class: 'q', 'data-qid': q.id }, questionText(q, 'ans-text'), metaLine(authorName(q), votesText(q.votes))),
  });
}

function questionItem(q, voted, queued, ended) {
  const textId = `qt-${q.id}`;
  if (ended) {
    return h(
      'li',
      { class: 'q', 'data-qid': q.id },
      questionText(q),
      metaLine(authorName(q), askedAt(q), votesText(q.votes), q.mine ? t('q.mine') : null),
    );
  }
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
    if (e.code !== 'already_voted' && e.code !== 'not_voted') formError($('#vote-msg'), e);
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
    sig: (q) => sig(q),
    render: (q) =>
      h(
        'li',
        { class: `q mine status-${q.status}`, 'data-qid': q.id },
        questionText(q, 'mine-text'),
        h('p', { class: `q-status status-${q.status}` }, statusText(q)),
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
  const ended = m.status === 'ended';
  $('#chat-closed').hidden = !closed || ended;
  setText($('#chat-closed'), closed);
  $('#chat-form').hidden = ended;

  const comments = model.commentList().slice(-MAX_COMMENTS_SHOWN);
  $('#comments-empty').hidden = comments.length > 0;
  const list = $('#comments');
  list.hidden = comments.length === 0;
  stickToBottom(list, () =>
    syncList(list, comments, { key: (c) => c.id, sig: (c) => sig(c), render: (c) => commentItem(c) }),
  );

  const canChat = !gone && m.status === 'live' && m.chat_open && !you.muted;
  for (const el of $('#chat-form').elements) el.disabled = !canChat;
}

/** A form that sends its text field as a command: checks the length first, keeps the focus
 *  where it is while sending (a disabled button would drop it to the page), clears the field on
 *  success and shows `sent` (or the error). `before` runs first (saving a changed name). */
function textForm(formSel, fieldSel, msgSel, lengthOk, build, before = async () => {}) {
  let busy = false;
  $(formSel).addEventListener('submit', async (e) => {
    e.preventDefault();
    if (e.submitter && e.submitter.id === 'name-save') {
      saveName();
      return;
    }
    const field = $(fieldSel);
    const msg = $(msgSel);
    if (!lengthOk()) {
      formMessage(msg, () => lengthError(field.value), true);
      field.focus();
      return;
    }
    if (busy) return;
    busy = true;
    const submit = $(`${formSel} button.primary[type=submit]`);
    submit.setAttribute('aria-disabled', 'true');
    try {
      await before();
      const { command, sent } = build(field.value);
      await session.conn.send(command);
      field.value = '';
      field.dispatchEvent(new Event('input'));
      formMessage(msg, sent);
    } catch (err) {
      formError(msg, err);
    } finally {
      busy = false;
      submit.removeAttribute('aria-disabled');
      session.rerender();
    }
  });
}

/** Sends the name if the citizen changed it; resolves when the server has it. */
async function nameIfChanged() {
  const input = $('#name-input');
  const current = session.model.you?.name || '';
  if (!nameDirty || input.value.trim() === current) return;
  if (charCount(input.value) > MAX_NAME) throw Object.assign(new Error('name'), { code: 'text_too_long' });
  await session.conn.send({ type: 'set_name', name: input.value });
  nameDirty = false;
}

async function saveName() {
  const input = $('#name-input');
  const msg = $('#name-msg');
  if (charCount(input.value) > MAX_NAME) {
    formMessage(msg, () => t('err.text_too_long'), true);
    input.focus();
    return;
  }
  try {
    await session.conn.send({ type: 'set_name', name: input.value });
    nameDirty = false;
    const key = input.value.trim() ? 'viewer.name.saved' : 'viewer.name.cleared';
    formMessage(msg, () => t(key));
  } catch (err) {
    formError(msg, err);
  }
}

function wireForms() {
  textForm(
    '#ask-form',
    '#ask-text',
    '#ask-msg',
    askOk,
    (text) => ({
      command: { type: 'ask_question', text, anonymous: $('#ask-anon').checked },
      sent: () => t('viewer.ask.sent'),
    }),
    nameIfChanged,
  );
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
}
