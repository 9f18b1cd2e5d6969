// The public record of an ended meeting: /m/{id}/record. Reads /m/{id}/record.json (only
// there once the organizer published it) and shows it; printable (css/record.css).

import { $, h, setText } from './dom.js';
import { dateTimeIn, t, timeIn, tn } from './i18n.js';
import { initPage, meetingFromPath, showFatal } from './page.js';

const meeting = meetingFromPath();
let record = null;

initPage(render);
$('#record-print').addEventListener('click', () => window.print());

if (!meeting) showFatal(t('err.no_meeting'));
else load();

async function load() {
  let res;
  try {
    res = await fetch(`/m/${encodeURIComponent(meeting)}/record.json`, { cache: 'no-store' });
  } catch {
    $('#record-status').hidden = true;
    showFatal(t('err.network'));
    return;
  }
  $('#record-status').hidden = true;
  if (!res.ok) {
    let code = '';
    try {
      code = (await res.json()).code || '';
    } catch {
      // not JSON
    }
    showFatal(code === 'no_meeting' ? t('err.no_meeting') : t('record.notPublished'));
    return;
  }
  record = await res.json();
  render();
}

function outcome(q, zone) {
  const time = q.answered_at ? timeIn(q.answered_at, zone) : '';
  switch (q.outcome) {
    case 'answered':
      return time ? t('record.outcome.answered', { time }) : t('record.outcome.answered.notime');
    case 'ended':
      return t('record.outcome.ended', { time });
    case 'merged':
      return t('record.outcome.merged', { n: q.merged_into });
    case 'rejected':
      return t('record.outcome.rejected', { reason: q.reason || '' });
    default:
      return t('record.outcome.not_answered');
  }
}

function questionItem(q, zone) {
  const author = q.anonymous ? t('record.anonymous') : q.author_name ? t('record.by', { name: q.author_name }) : '';
  return h(
    'li',
    { class: `record-q outcome-${q.outcome}`, id: `q${q.id}`, 'data-qid': q.id },
    h('p', { class: 'record-q-text prewrap' }, q.text),
    h(
      'p',
      { class: 'meta' },
      h('span', { class: 'record-q-no' }, t('record.number', { n: q.id })),
      author ? [' · ', h('span', { class: 'record-q-author' }, author)] : null,
      ' · ',
      h('span', {}, t('record.asked', { time: dateTimeIn(q.asked_at, zone) })),
      ' · ',
      h('span', {}, tn('q.votes', q.votes)),
    ),
    h('p', { class: 'record-q-outcome' }, outcome(q, zone)),
  );
}

function render() {
  if (!record) return;
  const m = record.meeting;
  const zone = m.time_zone;
  document.title = `${t('record.title')}: ${m.title} – townhall`;
  setText($('#record-title'), m.title);
  const when = [];
  if (m.starts_at) when.push(t('record.when', { date: dateTimeIn(m.starts_at, zone) }));
  if (m.ended_at) when.push(t('record.endedAt', { date: dateTimeIn(m.ended_at, zone) }));
  setText($('#record-when'), when.join(' '));

  const agenda = m.agenda || [];
  $('#record-about').hidden = !m.description && agenda.length === 0;
  setText($('#record-description'), m.description || '');
  $('#record-description').hidden = !m.description;
  $('#record-agenda-h').hidden = agenda.length === 0;
  $('#record-agenda').replaceChildren(...agenda.map((item) => h('li', {}, item)));

  $('#record-questions-empty').hidden = record.questions.length > 0;
  $('#record-questions').replaceChildren(...record.questions.map((q) => questionItem(q, zone)));

  $('#record-polls-card').hidden = record.polls.length === 0;
  $('#record-polls').replaceChildren(
    ...record.polls.map((p) => {
      const total = p.counts.reduce((a, b) => a + b, 0);
      return h(
        'figure',
        { class: 'record-poll' },
        h('figcaption', {}, p.question),
        h(
          'ul',
          {},
          p.options.map((o, i) => {
            const share = total ? Math.round((100 * p.counts[i]) / total) : 0;
            return h('li', {}, `${o}: ${p.counts[i]} (${share} %)`);
          }),
        ),
        h('p', { class: 'meta' }, t('record.poll.total', { n: total })),
      );
    }),
  );

  const comments = record.comments;
  $('#record-comments-card').hidden = !comments;
  if (comments) {
    $('#record-comments-empty').hidden = comments.length > 0;
    $('#record-comments').replaceChildren(
      ...comments.map((c) =>
        h(
          'li',
          { class: 'comment' },
          h('p', { class: 'meta' }, `${c.author_name || t('c.noName')} · ${timeIn(c.at, zone)}`),
          h('p', { class: 'prewrap' }, c.text),
        ),
      ),
    );
  }
  $('#record-body').hidden = false;
}
