// The citizen's page: /m/{meeting}

import { $, announcer, charCount, h, setText, syncList } from './dom.js';
import { errorText, t } from './i18n.js';
import { charCounter, formMessage, initPage, joinMeeting, meetingFromPath, showFatal } from './page.js';
import {
  askedAt, authorName, commentItem, metaLine, onlineText, questionText, sig, statusBadge,
  statusText, stickToBottom, votesText,
} from './views.js';

const MAX_QUESTION = 500;
const MAX_COMMENT = 300;
const MAX_NAME = 40;
const MAX_COMMENTS_SHOWN = 200;
const OPEN = ['approved', 'queued', 'on_air'];

const meeting = meetingFromPath();
let session = null;
const busyVotes = new Set();

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
  wireForms();
}

/** Announces what is new to screen-reader users; never for a snapshot (first join, resync). */
function beforeFrame(msg, model) {
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

function wireForms() {
  $('#ask-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = $('#ask-text');
    const msg = $('#ask-msg');
    if (!askOk()) {
      formMessage(msg, errorText(charCount(text.value) ? 'text_too_long' : 'text_empty'), true);
      text.focus();
      return;
    }
    const submit = e.submitter || $('#ask-form button[type=submit]');
    submit.disabled = true;
    try {
      await session.conn.send({ type: 'ask_question', text: text.value, anonymous: $('#ask-anon').checked });
      text.value = '';
      text.dispatchEvent(new Event('input'));
      formMessage(msg, t('viewer.ask.sent'));
    } catch (err) {
      formMessage(msg, errorText(err.code, err.retryAfterMs), true);
    } finally {
      submit.disabled = false;
      session.rerender();
    }
  });

  $('#chat-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = $('#chat-text');
    const msg = $('#chat-msg');
    if (!chatOk()) {
      formMessage(msg, errorText(charCount(text.value) ? 'text_too_long' : 'text_empty'), true);
      text.focus();
      return;
    }
    const submit = e.submitter || $('#chat-form button[type=submit]');
    submit.disabled = true;
    try {
      await session.conn.send({ type: 'post_comment', text: text.value });
      text.value = '';
      text.dispatchEvent(new Event('input'));
      setText(msg, '');
    } catch (err) {
      formMessage(msg, errorText(err.code, err.retryAfterMs), true);
    } finally {
      submit.disabled = false;
      session.rerender();
    }
  });
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
