// The citizen's live picture and sound: one WHEP session while the meeting is live and has a
// source on stage, the stage (GET …/stage every 2 s, and at once when a track starts or stops)
// laid out with the screen share large, cameras beside it and the interpreter as a small picture;
// "waiting" / "paused" when nothing is sent; sound behind a button when autoplay is refused;
// a manual quality choice; reconnects by itself.

import { $, h, setText } from './dom.js';
import { onLangChange, t } from './i18n.js';
import { receiveQuality } from './media-stats.js';
import { mediaErrorText } from './media-ui.js';
import { LAYERS, SLOTS, WhepViewer } from './whep.js';

const STAGE_EVERY_MS = 2000;
const STATS_EVERY_MS = 2000;
const RESTART_FAILED_MS = 10_000;

const tv = {
  meeting: null,
  status: null, // the meeting's status from the WebSocket
  sources: [], // from GET /stage
  hadSources: false,
  viewer: null, // WhepViewer
  slots: [], // per slot: { fig, video, caption, audio }
  /** 'unknown' (not tried yet) | 'blocked' (autoplay refused) | 'on' | 'off' (turned off). */
  sound: 'unknown',
  pollTimer: 0,
  polling: false,
  statsTimer: 0,
  prevReport: null,
  quality: null,
  announced: '',
  /** Timing of the current session, for the tests and debugging (performance.now() ms). */
  timing: { whepStart: null, firstFrame: null },
};

export function initStage(meeting) {
  tv.meeting = meeting;
  const stage = $('#stage');
  for (let k = 0; k < SLOTS; k++) {
    const video = h('video', { muted: true, autoplay: true, playsinline: true, 'data-slot': k });
    video.muted = true;
    const caption = h('figcaption', { class: 'slot-label' });
    const fig = h('figure', { class: 'slot', 'data-slot': k, hidden: true }, video, caption);
    const audio = h('audio', { 'data-slot': k, autoplay: true });
    video.addEventListener('resize', paint);
    stage.insertBefore(fig, $('#stage-overlay'));
    stage.appendChild(audio);
    tv.slots.push({ fig, video, caption, audio });
  }
  $('#tv-sound').addEventListener('click', toggleSound);
  $('#tv-fullscreen').addEventListener('click', toggleFullscreen);
  document.addEventListener('fullscreenchange', paint);
  document.addEventListener('webkitfullscreenchange', paint);
  $('#tv-quality').addEventListener('change', chooseLayer);
  window.addEventListener('pagehide', () => stopViewer({ keepalive: true }));
  onLangChange(paint);
  window.townhall = Object.assign(window.townhall || {}, { media: tv });
}

/** Called with the meeting's status on every render of the page. */
export function stageStatus(status) {
  if (tv.status === status) return;
  tv.status = status;
  if (status === 'live') {
    pollStage();
  } else {
    clearTimeout(tv.pollTimer);
    tv.pollTimer = 0;
    tv.sources = [];
    tv.hadSources = false;
    stopViewer();
  }
  paint();
}

async function pollStage() {
  clearTimeout(tv.pollTimer);
  tv.pollTimer = 0;
  if (tv.status !== 'live' || tv.polling) return;
  tv.polling = true;
  try {
    const res = await fetch(`/api/meetings/${encodeURIComponent(tv.meeting)}/stage`, { cache: 'no-store' });
    if (res.ok) {
      const stage = await res.json();
      tv.sources = Array.isArray(stage.sources) ? stage.sources.filter((s) => s.slot >= 0 && s.slot < SLOTS) : [];
      if (tv.sources.length) tv.hadSources = true;
      if (stage.live && tv.sources.length && !tv.viewer) startViewer();
    }
  } catch {
    // offline: the WebSocket banner says so; try again on the next tick
  } finally {
    tv.polling = false;
  }
  paint();
  if (tv.status === 'live') tv.pollTimer = setTimeout(pollStage, STAGE_EVERY_MS);
}

function startViewer() {
  const viewer = new WhepViewer({ meeting: tv.meeting });
  tv.viewer = viewer;
  viewer.layer = LAYERS[$('#tv-quality').value] ?? null;
  viewer.addEventListener('pc', () => bindTracks(viewer));
  viewer.addEventListener('state', (e) => {
    // Failed for a reason retrying at once cannot fix (e.g. the meeting is unknown right now):
    // try again later, as long as the meeting is live.
    if (e.detail.state === 'failed') {
      setTimeout(() => tv.viewer === viewer && tv.status === 'live' && viewer.start(), RESTART_FAILED_MS);
    }
    paint();
  });
  tv.timing = { whepStart: performance.now(), firstFrame: null };
  viewer.start();
  clearInterval(tv.statsTimer);
  tv.prevReport = null;
  tv.statsTimer = setInterval(updateStats, STATS_EVERY_MS);
}

function stopViewer(opts) {
  const viewer = tv.viewer;
  tv.viewer = null;
  clearInterval(tv.statsTimer);
  tv.quality = null;
  for (const s of tv.slots) {
    s.video.srcObject = null;
    s.audio.srcObject = null;
  }
  if (viewer) viewer.stop(opts);
}

/** A new peer connection has new receiver tracks: put them in the slots' elements. */
function bindTracks(viewer) {
  viewer.slots.forEach((tracks, k) => {
    const slot = tv.slots[k];
    slot.video.srcObject = new MediaStream([tracks.video]);
    slot.audio.srcObject = new MediaStream([tracks.audio]);
    // A track starts when its slot's source sends, and stops when it leaves: ask the stage now
    // instead of waiting for the next poll.
    for (const tr of [tracks.video, tracks.audio]) {
      tr.addEventListener('unmute', pollStage);
      tr.addEventListener('mute', pollStage);
    }
    watchFirstFrame(slot.video, viewer);
    slot.video.play().catch(() => {});
  });
  playSound();
}

function watchFirstFrame(video, viewer) {
  const seen = () => {
    if (tv.viewer === viewer && tv.timing.firstFrame === null) tv.timing.firstFrame = performance.now();
    paint();
  };
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(seen);
  else video.addEventListener('loadeddata', seen, { once: true });
}

/** Plays every slot's sound; a browser that wants a click first gets the "turn on sound"
 *  button instead. */
function playSound() {
  const off = tv.sound === 'off';
  for (const s of tv.slots) {
    s.audio.muted = off;
    if (!s.audio.srcObject || off) continue;
    s.audio.play().then(
      () => {
        if (tv.sound !== 'off' && tv.sound !== 'on') {
          tv.sound = 'on';
          paint();
        }
      },
      (e) => {
        if (e.name === 'NotAllowedError' && tv.sound !== 'off') {
          tv.sound = 'blocked';
          paint();
        }
      },
    );
  }
}

function toggleSound() {
  tv.sound = tv.sound === 'on' ? 'off' : 'unknown';
  playSound();
  paint();
}

/** The element shown full screen: the whole stage (every picture, the interpreter included);
 *  where only a <video> can go full screen (iPhone), the main picture. */
function fullscreenElement() {
  return document.fullscreenElement || document.webkitFullscreenElement || null;
}

function canFullscreen() {
  const stage = $('#stage');
  return !!(stage.requestFullscreen || stage.webkitRequestFullscreen || tv.slots.some((s) => s.video.webkitEnterFullscreen));
}

async function toggleFullscreen() {
  const stage = $('#stage');
  try {
    if (fullscreenElement()) {
      await (document.exitFullscreen || document.webkitExitFullscreen).call(document);
    } else if (stage.requestFullscreen || stage.webkitRequestFullscreen) {
      await (stage.requestFullscreen || stage.webkitRequestFullscreen).call(stage);
    } else {
      const main = tv.slots.find((s) => s.fig.dataset.role === 'main') || tv.slots[0];
      main.video.webkitEnterFullscreen();
    }
  } catch {
    // Refused (not from a click, or not allowed here): the button stays as it was.
  }
  paint();
}

async function chooseLayer() {
  const rid = LAYERS[$('#tv-quality').value] ?? null;
  const msg = $('#tv-msg');
  setText(msg, '');
  if (!tv.viewer) return;
  try {
    await tv.viewer.setLayer(rid);
  } catch (e) {
    msg.classList.add('error');
    setText(msg, mediaErrorText(e));
  }
}

async function updateStats() {
  const viewer = tv.viewer;
  if (!viewer) return;
  const report = await viewer.stats();
  if (!report || viewer !== tv.viewer) return;
  tv.quality = receiveQuality(report, tv.prevReport);
  tv.prevReport = report;
  paint();
}

/** Where each source goes: the screen share is the big picture; without one, the first camera.
 *  Other cameras go beside it, the interpreter is a small picture over it. */
export function layout(sources) {
  const screen = sources.find((s) => s.source === 'screen' && s.video);
  const cams = sources.filter((s) => s.source !== 'interpreter' && s !== screen && s.video);
  const main = screen || cams[0] || null;
  const roles = new Map();
  for (const s of sources) {
    if (!s.video) continue;
    if (s === main) roles.set(s.slot, 'main');
    else if (s.source === 'interpreter') roles.set(s.slot, main ? 'pip' : 'main');
    else roles.set(s.slot, 'side');
  }
  return roles;
}

function sourceName(s) {
  const kind = t(`tv.source.${s.source}`) || s.source;
  return s.label ? t('tv.sourceLabel', { kind, label: s.label }) : kind;
}

function stageState() {
  if (tv.status !== 'live') return 'off';
  if (!tv.sources.length) return tv.hadSources ? 'paused' : 'waiting';
  const v = tv.viewer;
  if (!v || v.state === 'connecting' || v.state === 'idle') return 'connecting';
  if (v.state === 'reconnecting') return 'reconnecting';
  if (v.state === 'failed') return 'failed';
  const shown = tv.slots.some((s) => !s.fig.hidden && s.video.videoWidth > 0);
  const audioOnly = tv.sources.every((s) => !s.video);
  return shown || audioOnly ? 'playing' : 'connecting';
}

function paint() {
  const card = $('#tv');
  card.hidden = tv.status !== 'live';
  const stage = $('#stage');
  const state = stageState();
  stage.dataset.state = state;

  const roles = layout(tv.sources);
  const bySlot = new Map(tv.sources.map((s) => [s.slot, s]));
  let sides = 0;
  tv.slots.forEach((slot, k) => {
    const role = roles.get(k);
    const src = bySlot.get(k);
    slot.fig.hidden = !role;
    slot.fig.dataset.role = role || '';
    if (role === 'side') sides++;
    const name = src ? sourceName(src) : '';
    setText(slot.caption, name);
    slot.video.setAttribute('aria-label', name || t('tv.title'));
  });
  stage.dataset.sides = String(sides);
  stage.dataset.layout = [...roles.values()].includes('main') ? 'on' : 'none';

  const text = state === 'playing' ? '' : t(`tv.state.${state}`);
  setText($('#stage-msg'), text);
  $('#stage-overlay').hidden = !text;
  // One announcement per change of state (playing included), not per repaint.
  const say = t(`tv.state.${state}`);
  if (state !== 'off' && tv.announced !== state) {
    tv.announced = state;
    setText($('#tv-status'), say);
  } else if (tv.announced === state && $('#tv-status').textContent) {
    // After a language switch the same state, in the new language.
    setText($('#tv-status'), say);
  }

  $('.tv-controls').hidden = !tv.viewer;
  const sound = $('#tv-sound');
  const hasSound = !!tv.viewer && tv.sources.some((s) => s.audio);
  sound.hidden = !hasSound;
  setText(sound, t(tv.sound === 'on' ? 'tv.sound.off' : 'tv.sound.on'));
  sound.classList.toggle('primary', tv.sound !== 'on');
  sound.dataset.sound = tv.sound;

  const full = $('#tv-fullscreen');
  full.hidden = !tv.viewer || !canFullscreen();
  const isFull = !!fullscreenElement();
  setText(full, t(isFull ? 'tv.fullscreen.exit' : 'tv.fullscreen'));

  const q = tv.quality;
  setText($('#tv-quality-info'), q && q.width && state === 'playing' ? t('tv.quality.now', { w: q.width, h: q.height }) : '');
}
