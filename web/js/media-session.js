// What the WHIP publisher and the WHEP viewer share: the HTTP side of RFC 9725 / WHEP (POST the
// SDP offer, read the answer, Location, Link headers; DELETE to end), and a session that keeps
// itself connected (reconnects with backoff) and reports its state. See docs/protocol.md §14.

/** An HTTP error from a media route, with the server's `code` (e.g. `meeting_not_live`). */
export class MediaHttpError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || (status ? `http_${status}` : 'network');
  }

  /** Whether trying again later can help (the server is busy, restarting, or not live yet). */
  get retryable() {
    return this.code === 'network' || this.status >= 500 || this.code === 'meeting_not_live' || this.status === 404;
  }
}

/** Codes after which a publisher must not retry by itself: the link or the meeting is done. */
export const FINAL_CODES = new Set(['unauthorized', 'bad_token', 'meeting_ended', 'no_meeting', 'bad_sdp', 'unsupported_media_type', 'too_large']);

/**
 * Parses `Link` headers (already joined with ", " by fetch) into ICE servers and other links.
 * `<turn:h:3478?transport=udp>; rel="ice-server"; username="u"; credential="p"` →
 * { iceServers: [{ urls, username, credential }], links: [{ url, rel, params }] }.
 */
export function parseLinks(header) {
  const links = [];
  if (!header) return { iceServers: [], links };
  const re = /<([^>]*)>((?:\s*;\s*[\w*-]+(?:\s*=\s*(?:"[^"]*"|[^;,]*))?)*)/g;
  let m;
  while ((m = re.exec(header))) {
    const params = {};
    const pre = /;\s*([\w*-]+)(?:\s*=\s*(?:"([^"]*)"|([^;,]*)))?/g;
    let p;
    while ((p = pre.exec(m[2]))) params[p[1].toLowerCase()] = (p[2] ?? p[3] ?? '').trim();
    links.push({ url: m[1], rel: params.rel || '', params });
  }
  const iceServers = links
    .filter((l) => l.rel === 'ice-server')
    .map((l) => {
      const s = { urls: l.url };
      if (l.params.username !== undefined) s.username = l.params.username;
      if (l.params.credential !== undefined) s.credential = l.params.credential;
      return s;
    });
  return { iceServers, links };
}

/** Resolves when ICE gathering is complete, or after `timeoutMs` (then sends what it has: on a
 *  slow STUN/TURN server the host candidates usually suffice, and waiting longer delays play). */
export function iceGathered(pc, timeoutMs = 2500) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

async function errorFrom(res) {
  let code = '';
  let message = '';
  try {
    const body = await res.json();
    code = body.code || '';
    message = body.message || '';
  } catch {
    // not JSON: keep the status
  }
  return new MediaHttpError(res.status, code, message);
}

/**
 * Offers `pc` to a WHIP or WHEP endpoint: creates the offer, waits for candidates (no trickle),
 * POSTs it and applies the answer. Returns { session (absolute URL), iceServers, links }.
 */
export async function negotiate(pc, endpoint, { token } = {}) {
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await iceGathered(pc);
  const headers = { 'Content-Type': 'application/sdp' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(endpoint, { method: 'POST', headers, body: pc.localDescription.sdp, cache: 'no-store' });
  } catch (e) {
    throw new MediaHttpError(0, 'network', e.message);
  }
  if (res.status !== 201 && res.status !== 200) throw await errorFrom(res);
  const answer = await res.text();
  const location = res.headers.get('Location');
  if (!location) throw new MediaHttpError(res.status, 'no_location', 'the answer has no Location');
  const { iceServers, links } = parseLinks(res.headers.get('Link'));
  if (pc.signalingState === 'closed') throw new MediaHttpError(0, 'closed', 'closed while negotiating');
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  return { session: new URL(location, endpoint).href, iceServers, links };
}

/** Ends a session (DELETE its URL). Never throws: the server ends it anyway when ICE stops.
 *  `keepalive` lets the request outlive the page (pagehide). */
export async function endSession(session, { token, keepalive = false } = {}) {
  if (!session) return;
  try {
    await fetch(session, {
      method: 'DELETE',
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      keepalive,
      cache: 'no-store',
    });
  } catch {
    // gone already, or offline
  }
}

/** Retry delay for the n-th attempt (0-based): 1, 2, 4, 8, 15 s… with jitter, so that a
 *  thousand viewers of a restarted server don't come back in the same instant. */
export function retryDelay(attempt) {
  const base = Math.min(15_000, 1000 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

/**
 * Watches a peer connection: calls `onUp` when connected, `onDown` when it failed, or stayed
 * disconnected for `graceMs` (ICE often recovers from a short "disconnected" by itself).
 */
export function watchConnection(pc, { onUp, onFlaky, onDown, graceMs = 5000 }) {
  let timer = 0;
  const check = () => {
    const s = pc.connectionState;
    clearTimeout(timer);
    timer = 0;
    if (s === 'connected') onUp();
    else if (s === 'failed') onDown();
    else if (s === 'disconnected') {
      if (onFlaky) onFlaky();
      timer = setTimeout(() => {
        if (pc.connectionState !== 'connected') onDown();
      }, graceMs);
    }
  };
  pc.addEventListener('connectionstatechange', check);
  return () => {
    clearTimeout(timer);
    pc.removeEventListener('connectionstatechange', check);
  };
}

/**
 * One WHIP or WHEP session that keeps itself connected. Subclasses implement `build(pc)` (add
 * the transceivers) and may override `connected(result)`. States, in `state` and as 'state'
 * events: idle → connecting → live; reconnecting (after a drop, retried with backoff); failed
 * (`error` says why; `start()` again to retry); stopped. A 'pc' event tells that a new peer
 * connection (with new receiver tracks) replaced the old one.
 */
export class MediaSession extends EventTarget {
  constructor({ endpoint, token = null, maxAttempts = Infinity, iceServers = [] }) {
    super();
    this.endpoint = endpoint;
    this.token = token;
    this.maxAttempts = maxAttempts;
    this.iceServers = iceServers;
    this.state = 'idle';
    this.error = null;
    this.pc = null;
    this.session = null;
    this.links = [];
    this.attempt = 0;
    this.wasLive = false;
    this.generation = 0;
    this.retryTimer = 0;
    this.unwatch = null;
  }

  setState(state, error = null) {
    this.state = state;
    this.error = error;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, error } }));
  }

  /** Starts (or restarts after `failed`). */
  start() {
    this.attempt = 0;
    this.wasLive = false;
    this.teardown();
    this.connect('connecting');
  }

  /** Ends the session for good: DELETE, close the peer connection. */
  async stop({ keepalive = false } = {}) {
    const session = this.session;
    // DELETE before closing the peer connection: closing first ends the session on the relay
    // (DTLS close), and the DELETE that follows would find it gone (404).
    const ended = endSession(session, { token: this.token, keepalive });
    this.generation++;
    this.setState('stopped');
    if (!keepalive) await ended;
    this.teardown();
  }

  teardown() {
    this.generation++;
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    if (this.unwatch) this.unwatch();
    this.unwatch = null;
    if (this.pc) this.pc.close();
    this.pc = null;
    this.session = null;
  }

  async connect(state) {
    const gen = ++this.generation;
    this.setState(state);
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle' });
    this.pc = pc;
    this.build(pc);
    this.dispatchEvent(new CustomEvent('pc', { detail: pc }));
    this.unwatch = watchConnection(pc, {
      onUp: () => {
        if (gen !== this.generation) return;
        this.attempt = 0;
        this.wasLive = true;
        this.setState('live');
      },
      onFlaky: () => gen === this.generation && this.setState('reconnecting'),
      onDown: () => gen === this.generation && this.retry(null),
    });
    try {
      const result = await negotiate(pc, this.endpoint, { token: this.token });
      if (gen !== this.generation) {
        endSession(result.session, { token: this.token });
        return;
      }
      this.session = result.session;
      this.links = result.links;
      // TURN servers learned from the answer are used from the next attempt on.
      if (result.iceServers.length) this.iceServers = result.iceServers;
      this.connected(result);
    } catch (e) {
      if (gen !== this.generation) return;
      const err = e instanceof MediaHttpError ? e : new MediaHttpError(0, 'webrtc', e.message);
      if (FINAL_CODES.has(err.code) || !err.retryable && err.code !== 'webrtc') {
        this.teardown();
        this.setState('failed', err);
      } else this.retry(err);
    }
  }

  /** The session dropped or could not start: a new one after a backoff delay. */
  retry(error) {
    const old = this.session;
    this.teardown();
    endSession(old, { token: this.token });
    if (this.attempt >= this.maxAttempts) {
      this.setState('failed', error || new MediaHttpError(0, 'connection_failed', 'the connection failed'));
      return;
    }
    const delay = retryDelay(this.attempt++);
    // Until it has been live once, it is still "connecting" (not "the connection dropped").
    const state = this.wasLive ? 'reconnecting' : 'connecting';
    this.setState(state, error);
    const gen = this.generation;
    this.retryTimer = setTimeout(() => gen === this.generation && this.connect(state), delay);
  }

  build() {}

  connected() {}

  /** The peer connection's stats report, or null when there is none. */
  async stats() {
    return this.pc ? this.pc.getStats() : null;
  }
}
