// The studio's broadcast panel: camera, microphone and screen pickers, a preview, going live
// over WHIP (camera + microphone in one session, screen share in a second), mute and camera
// off, the connection quality, and the WHIP address and key for OBS.

import { $, setText } from './dom.js';
import { onLangChange, t } from './i18n.js';
import { sendQuality } from './media-stats.js';
import { copyField, gradeText, mediaErrorText, qualityPairs, statsList } from './media-ui.js';
import { WhipPublisher, whipEndpoint } from './whip.js';

const STATS_EVERY_MS = 2000;

const bc = {
  meeting: null,
  token: null,
  status: null, // the meeting's status (scheduled, live, ended)
  stream: null, // camera + microphone
  camera: null, // WhipPublisher
  screen: null, // WhipPublisher
  micOff: false,
  camOff: false,
  prevReport: null,
  statsTimer: 0,
  busy: false,
};

export function initBroadcast({ meeting, token }) {
  bc.meeting = meeting;
  bc.token = token;
  $('#bc-whip-url').value = whipEndpoint(meeting).replace(/\?.*$/, '');
  $('#bc-whip-token').value = token;
  $('#bc-copy-url').addEventListener('click', () => copyField($('#bc-whip-url'), $('#bc-copy-msg')));
  $('#bc-copy-token').addEventListener('click', () => copyField($('#bc-whip-token'), $('#bc-copy-msg')));
  $('#bc-devices').addEventListener('click', () => acquire());
  $('#bc-camera').addEventListener('change', () => switchDevice('video'));
  $('#bc-mic').addEventListener('change', () => switchDevice('audio'));
  $('#bc-go').addEventListener('click', () => (bc.camera ? stopLive() : goLive()));
  $('#bc-retry').addEventListener('click', () => bc.camera && bc.camera.start());
  $('#bc-mute').addEventListener('click', () => {
    bc.micOff = !bc.micOff;
    applyEnabled();
  });
  $('#bc-camoff').addEventListener('click', () => {
    bc.camOff = !bc.camOff;
    applyEnabled();
  });
  $('#bc-screen').addEventListener('click', () => (bc.screen ? stopScreen() : shareScreen()));
  navigator.mediaDevices?.addEventListener?.('devicechange', () => bc.stream && listDevices());
  // Leaving the page ends the sessions at once (else the relay waits for ICE to time out).
  window.addEventListener('pagehide', () => {
    if (bc.camera) bc.camera.stop({ keepalive: true });
    if (bc.screen) bc.screen.stop({ keepalive: true });
  });
  onLangChange(paint);
  // For the browser tests and debugging: the publishers; holds nothing the page's URL doesn't.
  window.townhall = Object.assign(window.townhall || {}, { broadcast: bc });
  paint();
}

/** Called with the meeting's status on every render of the page. */
export function broadcastStatus(status) {
  if (bc.status === status) return;
  bc.status = status;
  if (status === 'ended') {
    if (bc.camera) stopLive();
    if (bc.screen) stopScreen();
  }
  paint();
}

function message(text, error = false) {
  const el = $('#bc-msg');
  el.classList.toggle('error', error);
  setText(el, text);
}

function constraints(kind) {
  const id = kind === 'video' ? $('#bc-camera').value : $('#bc-mic').value;
  const device = id ? { deviceId: { exact: id } } : {};
  return kind === 'video'
    ? { ...device, width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } }
    : { ...device, echoCancellation: true, noiseSuppression: true, autoGainControl: true };
}

/** Asks for camera and microphone (either alone if the other is missing or refused). */
async function acquire() {
  if (!navigator.mediaDevices?.getUserMedia) {
    message(t('media.err.NotSupportedError'), true);
    return false;
  }
  bc.busy = true;
  paint();
  let stream = null;
  let error = null;
  for (const want of [{ video: true, audio: true }, { video: true }, { audio: true }]) {
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: want.video ? constraints('video') : false,
        audio: want.audio ? constraints('audio') : false,
      });
      break;
    } catch (e) {
      error = error || e;
      if (e.name === 'NotAllowedError' || e.name === 'SecurityError') break;
    }
  }
  bc.busy = false;
  if (!stream) {
    message(mediaErrorText(error), true);
    paint();
    return false;
  }
  if (bc.stream) for (const tr of bc.stream.getTracks()) tr.stop();
  bc.stream = stream;
  message(stream.getVideoTracks().length && stream.getAudioTracks().length ? '' : t('bc.partial'), false);
  applyEnabled();
  await listDevices();
  return true;
}

/** Fills the camera and microphone pickers (device names are only known after permission). */
async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, sel] of [['videoinput', $('#bc-camera')], ['audioinput', $('#bc-mic')]]) {
    const list = devices.filter((d) => d.kind === kind && d.deviceId);
    const track = kind === 'videoinput' ? bc.stream?.getVideoTracks()[0] : bc.stream?.getAudioTracks()[0];
    const current = track?.getSettings().deviceId || sel.value;
    sel.replaceChildren(
      ...list.map((d, i) => {
        const o = document.createElement('option');
        o.value = d.deviceId;
        o.textContent = d.label || t(kind === 'videoinput' ? 'bc.camera.n' : 'bc.mic.n', { n: i + 1 });
        return o;
      }),
    );
    if (list.some((d) => d.deviceId === current)) sel.value = current;
  }
  paint();
}

/** Another camera or microphone: a new track, swapped into the running session. */
async function switchDevice(kind) {
  if (!bc.stream) return;
  let track;
  try {
    const s = await navigator.mediaDevices.getUserMedia({ [kind]: constraints(kind) });
    track = kind === 'video' ? s.getVideoTracks()[0] : s.getAudioTracks()[0];
  } catch (e) {
    message(mediaErrorText(e), true);
    return;
  }
  const old = kind === 'video' ? bc.stream.getVideoTracks()[0] : bc.stream.getAudioTracks()[0];
  if (old) {
    bc.stream.removeTrack(old);
    old.stop();
  }
  bc.stream.addTrack(track);
  applyEnabled();
  if (bc.camera) await bc.camera.replaceTrack(kind, track);
  message('');
}

/** Mute and camera off keep the session (the relay keeps the slot): the track sends silence
 *  or black frames. */
function applyEnabled() {
  if (bc.stream) {
    for (const tr of bc.stream.getAudioTracks()) tr.enabled = !bc.micOff;
    for (const tr of bc.stream.getVideoTracks()) tr.enabled = !bc.camOff;
  }
  const preview = $('#bc-preview');
  if (bc.stream && preview.srcObject !== bc.stream) {
    preview.srcObject = bc.stream;
    preview.play().catch(() => {});
  }
  paint();
}

async function goLive() {
  if (bc.busy || bc.status === 'ended') return;
  if (!bc.stream && !(await acquire())) return;
  const label = $('#bc-label').value.trim();
  bc.camera = new WhipPublisher({
    meeting: bc.meeting,
    token: bc.token,
    source: $('#bc-source').value,
    label,
    video: bc.stream.getVideoTracks()[0] || null,
    audio: bc.stream.getAudioTracks()[0] || null,
  });
  bc.camera.addEventListener('state', onCameraState);
  bc.prevReport = null;
  bc.camera.start();
  clearInterval(bc.statsTimer);
  bc.statsTimer = setInterval(updateStats, STATS_EVERY_MS);
  message('');
  paint();
}

function onCameraState(e) {
  const { state, error } = e.detail;
  if (state === 'failed') message(mediaErrorText(error), true);
  else if (state === 'live') message('');
  paint();
}

async function stopLive() {
  const pub = bc.camera;
  bc.camera = null;
  clearInterval(bc.statsTimer);
  bc.prevReport = null;
  paint();
  if (pub) await pub.stop();
  message(t('bc.stopped'));
}

async function shareScreen() {
  if (!navigator.mediaDevices?.getDisplayMedia) {
    message(t('media.err.NotSupportedError'), true);
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
  } catch (e) {
    if (e.name !== 'NotAllowedError') message(mediaErrorText(e), true);
    return;
  }
  const video = stream.getVideoTracks()[0];
  bc.screen = new WhipPublisher({
    meeting: bc.meeting,
    token: bc.token,
    source: 'screen',
    label: $('#bc-label').value.trim(),
    video,
    layers: 'screen',
  });
  bc.screen.stream = stream;
  bc.screen.addEventListener('state', (ev) => {
    if (ev.detail.state === 'failed') message(mediaErrorText(ev.detail.error), true);
    paint();
  });
  // The browser's own "stop sharing" button ends the track.
  video.addEventListener('ended', () => bc.screen && bc.screen.stream === stream && stopScreen());
  bc.screen.start();
  paint();
}

async function stopScreen() {
  const pub = bc.screen;
  bc.screen = null;
  paint();
  if (!pub) return;
  for (const tr of pub.stream.getTracks()) tr.stop();
  await pub.stop();
}

async function updateStats() {
  const pub = bc.camera;
  if (!pub) return;
  const report = await pub.stats();
  if (!report || pub !== bc.camera) return;
  bc.quality = pub.state === 'live' ? sendQuality(report, bc.prevReport) : null;
  bc.prevReport = report;
  paint();
}

const LIMITS = { none: 'bc.limit.none', bandwidth: 'bc.limit.bandwidth', cpu: 'bc.limit.cpu' };

function paint() {
  const pub = bc.camera;
  const state = pub ? pub.state : 'off';
  const ended = bc.status === 'ended';
  const el = $('#bc-state');
  let text;
  if (state === 'live') text = bc.status === 'live' ? t('bc.state.live') : t('bc.state.test');
  else text = t(`bc.state.${state === 'stopped' || state === 'idle' ? 'connecting' : state}`);
  setText(el, text);
  el.dataset.state = state;

  // Before the meeting starts, speakers can test: viewers see nothing until it is live.
  const note = $('#bc-note');
  const noteText = ended ? t('bc.note.ended') : bc.status === 'scheduled' ? t('bc.note.scheduled') : '';
  setText(note, noteText);
  note.hidden = !noteText;

  const hasVideo = !!bc.stream?.getVideoTracks().length;
  const hasAudio = !!bc.stream?.getAudioTracks().length;
  $('#bc-preview').hidden = !hasVideo;
  $('#bc-preview-empty').hidden = hasVideo;
  setText($('#bc-preview-empty'), t(hasVideo ? 'bc.preview.empty' : bc.stream ? 'bc.preview.noCamera' : 'bc.preview.empty'));
  $('#bc-devices').hidden = !!bc.stream;
  $('#bc-devices').disabled = bc.busy;
  $('#bc-camera').disabled = !hasVideo;
  $('#bc-mic').disabled = !hasAudio;
  // The name and role travel in the WHIP URL: fixed while live.
  $('#bc-label').disabled = !!pub;
  $('#bc-source').disabled = !!pub;

  const go = $('#bc-go');
  setText(go, t(pub ? 'bc.stop' : 'bc.go'));
  go.classList.toggle('danger', !!pub);
  go.classList.toggle('primary', !pub);
  go.disabled = bc.busy || (ended && !pub);
  $('#bc-retry').hidden = state !== 'failed';

  const mute = $('#bc-mute');
  mute.disabled = !hasAudio;
  setText(mute, t(bc.micOff ? 'bc.unmute' : 'bc.mute'));
  mute.classList.toggle('is-off', bc.micOff);
  const camoff = $('#bc-camoff');
  camoff.disabled = !hasVideo;
  setText(camoff, t(bc.camOff ? 'bc.camOn' : 'bc.camOff'));
  camoff.classList.toggle('is-off', bc.camOff);

  const screen = $('#bc-screen');
  setText(screen, t(bc.screen ? 'bc.screen.stop' : 'bc.screen'));
  screen.disabled = ended && !bc.screen;
  const sstate = bc.screen ? bc.screen.state : 'off';
  setText($('#bc-screen-state'), bc.screen ? t(`bc.screen.${sstate === 'idle' || sstate === 'stopped' ? 'connecting' : sstate}`) : '');
  $('#bc-screen-state').dataset.state = sstate;

  const q = pub && pub.state === 'live' ? bc.quality : null;
  gradeText($('#bc-quality-grade'), q?.grade);
  if (!q) {
    statsList($('#bc-quality'), [[t('bc.quality.state'), t(pub ? 'bc.quality.waiting' : 'bc.quality.none')]]);
    return;
  }
  statsList($('#bc-quality'), [
    ...qualityPairs(q, 'bc.bitrate'),
    [t('bc.layers'), q.layers.length ? q.layers.map((l) => `${l.width}×${l.height}`).join(', ') : '–'],
    [t('bc.limit'), t(LIMITS[q.limitation] || 'bc.limit.other')],
  ]);
}
