// The speakers' page: /m/{meeting}/studio#TOKEN — a presenter view: the question on air in large
// text, the next one and the pinned announcement beside it, first on the page; going live with
// camera, microphone and screen (studio-media.js) in a bar whose details fold away; the rest of
// the queue and the poll below.

import { $, h, setText, syncList } from './dom.js';
import { broadcastStatus, initBroadcast } from './studio-media.js';
import { t } from './i18n.js';
import { formError, initPage, joinMeeting, meetingFromPath, showFatal, staffMeeting, tokenFromHash } from './page.js';
import {
  authorName, metaLine, onlineText, pollIsOpen, pollResults, pollTotal, questionText, sig, votesText,
} from './views.js';

const STUDIO_ROLES = ['speaker', 'moderator', 'organizer'];

const meeting = meetingFromPath();
const token = tokenFromHash();
let session = null;

initPage(() => session && session.rerender());

/** Whether the broadcast details are unfolded, remembered on this computer. */
const PANEL_KEY = 'townhall.studio.panel';
function setPanel(open) {
  $('#bc-panel').hidden = !open;
  $('#bc-toggle').setAttribute('aria-expanded', String(open));
  try {
    localStorage.setItem(PANEL_KEY, open ? 'open' : 'closed');
  } catch {
    // storage off: the choice lasts for this page
  }
}
$('#bc-toggle').addEventListener('click', () => setPanel($('#bc-panel').hidden));
try {
  setPanel(localStorage.getItem(PANEL_KEY) === 'open');
} catch {
  setPanel(false);
}

if (!meeting) showFatal(t('err.no_meeting'));
else if (!token) showFatal(t('studio.noToken'));
else {
  session = joinMeeting({ meeting, token, render });
  initBroadcast({ meeting, token });
}

function render(m) {
  const mt = staffMeeting(m, STUDIO_ROLES, 'studio.wrongRole', session);
  if (!mt) return;
  setText($('#meeting-title'), t('studio.heading', { title: mt.title }));
  document.title = `${t('studio.title')}: ${mt.title} – ${t('app.name')}`;
  const live = mt.status === 'live';
  const ended = mt.status === 'ended';
  onlineText($('#online'), ended ? null : m.online);
  // After the end nothing can be sent or marked: the broadcast bar goes, one line says why.
  $('#studio-ended').hidden = !ended;
  $('#broadcast').hidden = ended;
  $('#announcement-box').hidden = !mt.announcement || ended;
  setText($('#studio-announcement'), mt.announcement || '');
  // One clear state: "the meeting is live", or what it is instead (scheduled, ended).
  setText($('#live-state'), live ? t('studio.live') : `${t('studio.notLive')} (${t(`status.${mt.status}`)})`);
  $('#live-state').classList.toggle('is-live', live);
  broadcastStatus(mt.status);

  const q = m.onAir();
  syncList($('#on-air'), q ? [q] : [null], {
    key: (x) => (x ? `q${x.id}` : 'empty'),
    sig: (x) => sig(x, ended),
    render: (x) =>
      x
        ? h(
          'article',
          { class: 'studio-question', 'data-qid': x.id },
          questionText(x, 'onair-text', 'studio-text'),
          metaLine(authorName(x), votesText(x.votes)),
          ended
            ? null
            : h('button', {
              type: 'button',
              class: 'primary big',
              'data-fkey': `answered-${x.id}`,
              'data-action': 'answered',
              on: { click: () => markAnswered(x.id) },
            }, t('act.answered')),
        )
        : h('p', { class: 'empty studio-empty' }, t('studio.onAir.empty')),
  });

  // The open poll (the newest, if several), else the last one; results only, no voting here.
  const poll = m.currentPoll();
  $('#poll-box').hidden = !poll;
  syncList($('#poll'), poll ? [poll] : [], {
    key: (p) => p.id,
    sig: (p) => sig(p, pollIsOpen(p, mt)),
    render: (p) => {
      const open = pollIsOpen(p, mt);
      return h(
        'article',
        { class: open ? 'studio-poll-item open' : 'studio-poll-item closed', 'data-pid': p.id },
        h('p', { class: 'studio-poll-question' }, p.question),
        h(
          'p',
          { class: 'poll-meta' },
          h('span', { class: open ? 'badge poll-badge' : 'badge poll-badge closed' }, t(open ? 'poll.open' : 'poll.closed')),
          ' ',
          h('span', {}, pollTotal(p)),
        ),
        pollResults(p, undefined, 'big'),
      );
    },
  });

  // The next question large, beside the one on air; the rest of the queue below.
  const [next, ...later] = m.queue();
  syncList($('#next'), [next || null], {
    key: (x) => (x ? `q${x.id}` : 'empty'),
    sig: (x) => sig(x),
    render: (x) =>
      x
        ? h('article', { class: 'studio-next-q', 'data-qid': x.id }, questionText(x, 'next-text', 'next-text'), metaLine(authorName(x), votesText(x.votes)))
        : h('p', { class: 'empty' }, t('studio.next.empty')),
  });
  const queue = later;
  $('#queue-empty').hidden = true;
  $('.studio-queue').hidden = queue.length === 0;
  syncList($('#queue'), queue, {
    key: (x) => x.id,
    sig: (x) => sig(x),
    render: (x) => h('li', { class: 'q', 'data-qid': x.id }, questionText(x, 'sq'), metaLine(authorName(x), votesText(x.votes))),
  });
}

async function markAnswered(id) {
  try {
    await session.conn.send({ type: 'mark_answered', question: id });
  } catch (e) {
    formError($('#studio-msg'), e);
  }
}
