// The citizen page's waiting state, before the meeting starts: date and time (in the meeting's
// time zone), a countdown, the description and agenda, whether questions can be sent in
// advance, and the calendar file. Kept apart from viewer.js (one block in viewer.html,
// #waiting) so the page's layout can change around it.
//
// The schedule comes from /m/{id}/meeting.json, read once and again whenever the log says the
// schedule changed (a `meeting_scheduled` event).

import { $, h, setText } from './dom.js';
import { dateTimeIn, t, timeIn, tn } from './i18n.js';

const MINUTE = 60_000;

/** Starts the waiting block for `meeting`; `onChange` runs when the schedule was (re)read. */
export function initWaiting(meeting, onChange) {
  let schedule = null;
  let status = null;
  let timer = null;

  async function load() {
    try {
      const res = await fetch(`/m/${encodeURIComponent(meeting)}/meeting.json`, { cache: 'no-store' });
      if (!res.ok) return;
      const body = await res.json();
      schedule = body.schedule || null;
    } catch {
      return; // Offline: the block stays as it was; the next change reads it again.
    }
    $('#wait-ics').href = `/m/${encodeURIComponent(meeting)}/meeting.ics`;
    render();
    onChange();
  }

  function countdown() {
    if (!schedule) return '';
    const left = Date.parse(schedule.starts_at) - Date.now();
    if (left < MINUTE) return t('wait.soon');
    const days = Math.floor(left / (24 * 60 * MINUTE));
    const hours = Math.floor(left / (60 * MINUTE)) % 24;
    const minutes = Math.floor(left / MINUTE) % 60;
    const parts = [];
    if (days) parts.push(tn(days === 1 ? 'wait.day' : 'wait.days', days));
    if (days || hours) parts.push(tn(hours === 1 ? 'wait.hour' : 'wait.hours', hours));
    if (days < 2) parts.push(tn(minutes === 1 ? 'wait.minute' : 'wait.minutes', minutes));
    return t('wait.countdown', { parts: parts.join(' ') });
  }

  function render() {
    // The page shows #waiting while the meeting is scheduled; this fills in its schedule.
    const box = $('#wait-schedule');
    const visible = status === 'scheduled' && !!schedule;
    box.hidden = !visible;
    // With a schedule, its own line says whether questions can be sent now.
    $('#waiting-text').hidden = visible;
    if (!visible) {
      clearInterval(timer);
      timer = null;
      return;
    }
    const zone = schedule.time_zone;
    const start = $('#wait-start');
    start.dateTime = schedule.starts_at;
    setText(start, dateTimeIn(schedule.starts_at, zone));
    setText($('#wait-end'), ` ${t('wait.until', { time: timeIn(schedule.ends_at, zone) })}`);
    setText($('#wait-countdown'), countdown());
    setText($('#wait-description'), schedule.description || '');
    $('#wait-description').hidden = !schedule.description;
    const agenda = schedule.agenda || [];
    $('#wait-agenda-box').hidden = agenda.length === 0;
    $('#wait-agenda').replaceChildren(...agenda.map((item) => h('li', {}, item)));
    setText($('#wait-qa'), t(schedule.qa_before_start ? 'wait.qaBefore' : 'wait.qaAtStart'));
    if (!timer) timer = setInterval(() => setText($('#wait-countdown'), countdown()), 15_000);
  }

  load();
  return {
    /** The meeting's status changed or the page re-renders (a language switch). */
    update(nextStatus) {
      status = nextStatus;
      render();
    },
    /** The log says the schedule changed. */
    reload: load,
    /** Citizens wait for the start before asking. */
    holdsQuestions(nextStatus) {
      return nextStatus === 'scheduled' && !!schedule && !schedule.qa_before_start;
    },
  };
}
