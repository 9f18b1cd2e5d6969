// The WebSocket connection to a meeting: hello/resume, commands with a promise each, keep-alive,
// and automatic reconnection with backoff. Protocol: crates/core/src/wire.rs.
//
// Events (CustomEvent, details in parentheses):
//   'welcome' ({protocol, participant, role, session})
//   'frame'   (a server frame that updates the view: snapshot, question, comment, …)
//   'state'   ({state, code}) — state is 'connecting' | 'open' | 'reconnecting' | 'offline' |
//             'closed'; `code` says why a connection was closed for good ('closed').
//             'reconnecting': connected, but the server refused a command as `unavailable` (it
//             lost its storage, e.g. Redis); it reconnects by itself, and the state is 'open'
//             again with the next ack or the next change to the meeting.
//   'notice'  ({code, message}) — an error or bye the page may want to show

/** Bye/error codes after which reconnecting cannot help. */
export const FATAL_CODES = new Set(['banned', 'bad_token', 'no_meeting', 'meeting_deleted']);

const PING_EVERY_MS = 20_000;
const DEAD_AFTER_MS = 10_000;
const COMMAND_TIMEOUT_MS = 15_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10_000;

/** A command that was refused or could not be delivered. `code` is a stable error code. */
export class CommandError extends Error {
  constructor(code, message = code, retryAfterMs = undefined) {
    super(message);
    this.name = 'CommandError';
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

export function socketUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

export class Connection extends EventTarget {
  /** @param {{meeting: string, token?: string, url?: string}} opts */
  constructor({ meeting, token, url }) {
    super();
    this.meeting = meeting;
    this.token = token || undefined;
    this.url = url || socketUrl();
    this.state = 'idle';
    this.closeCode = null;
    /** Highest offset seen; sent as `since` when resuming. */
    this.lastOffset = null;
    this.ws = null;
    this.nextRef = 1;
    this.pending = new Map();
    this.attempt = 0;
    this.timers = { reconnect: 0, ping: 0, dead: 0 };
    this.lastFrameAt = 0;
    this.fatalCode = null;
    this.byeCode = null;
    this.onOnline = () => {
      if (this.state === 'offline') this.reconnectNow();
    };
  }

  start() {
    addEventListener('online', this.onOnline);
    this.connect();
    return this;
  }

  /** Closes for good (no reconnection). */
  stop() {
    removeEventListener('online', this.onOnline);
    this.fatalCode = this.fatalCode || 'stopped';
    if (this.ws) this.drop(this.ws);
  }

  /** Forgets the resume point and joins afresh (a new snapshot instead of missed frames). */
  rejoinFresh() {
    this.lastOffset = null;
    if (this.ws) this.drop(this.ws);
    this.attempt = 0;
    this.reconnectNow();
  }

  reconnectNow() {
    clearTimeout(this.timers.reconnect);
    if (!this.ws && this.state !== 'closed') this.connect();
  }

  setState(state, code = null) {
    if (this.state === state && this.closeCode === code) return;
    this.state = state;
    this.closeCode = code;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, code } }));
  }

  connect() {
    this.timers.reconnect = 0;
    if (this.state === 'idle') this.setState('connecting');
    this.byeCode = null;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    // A handshake that neither opens nor fails (a frozen server) must not hang the page.
    this.expectFrameWithin(ws, DEAD_AFTER_MS + 5_000);
    ws.onopen = () => {
      const hello = { t: 'hello', meeting: this.meeting };
      if (this.lastOffset !== null) hello.since = this.lastOffset;
      if (this.token) hello.token = this.token;
      ws.send(JSON.stringify(hello));
      this.expectFrameWithin(ws, DEAD_AFTER_MS);
    };
    ws.onmessage = (e) => {
      if (ws !== this.ws) return;
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      this.lastFrameAt = Date.now();
      this.handle(msg);
    };
    ws.onclose = () => this.closed(ws);
    ws.onerror = () => {}; // a close event follows
  }

  /**
   * Keep-alive: a ping every PING_EVERY_MS whatever the server sends (the server closes
   * connections that stay silent), and the connection counts as dead when no frame at all
   * arrives within DEAD_AFTER_MS of a ping.
   */
  startKeepAlive(ws) {
    clearInterval(this.timers.ping);
    this.timers.ping = setInterval(() => {
      if (ws !== this.ws || ws.readyState !== WebSocket.OPEN) return;
      const sentAt = Date.now();
      ws.send('{"t":"ping"}');
      clearTimeout(this.timers.dead);
      this.timers.dead = setTimeout(() => {
        if (ws === this.ws && this.lastFrameAt < sentAt) this.drop(ws);
      }, DEAD_AFTER_MS);
    }, PING_EVERY_MS);
  }

  /** Drops the socket unless a frame arrives within `ms` (used while waiting for `welcome`). */
  expectFrameWithin(ws, ms) {
    const since = Date.now();
    clearTimeout(this.timers.dead);
    this.timers.dead = setTimeout(() => {
      if (ws === this.ws && this.lastFrameAt < since) this.drop(ws);
    }, ms);
  }

  /** Forgets a socket at once (a dead TCP connection may take minutes to report its close). */
  drop(ws) {
    ws.onclose = null;
    ws.onmessage = null;
    try {
      ws.close();
    } catch {
      // already closed
    }
    this.closed(ws);
  }

  closed(ws) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.dead);
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new CommandError('disconnected'));
    }
    this.pending.clear();
    if (this.fatalCode) {
      removeEventListener('online', this.onOnline);
      this.setState('closed', this.fatalCode);
      return;
    }
    this.setState('offline', this.byeCode);
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt = Math.min(this.attempt + 1, 10);
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => this.connect(), delay);
  }

  handle(msg) {
    switch (msg.t) {
      case 'welcome':
        this.attempt = 0;
        clearTimeout(this.timers.dead);
        this.startKeepAlive(this.ws);
        this.setState('open');
        this.dispatchEvent(new CustomEvent('welcome', { detail: msg }));
        return;
      case 'pong':
        return;
      case 'ack': {
        if (this.state === 'reconnecting') this.setState('open');
        const p = this.pending.get(msg.ref);
        if (p) {
          this.pending.delete(msg.ref);
          clearTimeout(p.timer);
          p.resolve({ offset: msg.offset });
        }
        return;
      }
      case 'error': {
        if (msg.code === 'unavailable' && this.state === 'open') this.setState('reconnecting');
        const p = msg.ref !== undefined && msg.ref !== null ? this.pending.get(msg.ref) : undefined;
        if (p) {
          this.pending.delete(msg.ref);
          clearTimeout(p.timer);
          p.reject(new CommandError(msg.code, msg.message, msg.retry_after_ms));
          return;
        }
        if (FATAL_CODES.has(msg.code)) {
          this.fatalCode = msg.code;
          if (this.ws) this.drop(this.ws);
        }
        this.dispatchEvent(new CustomEvent('notice', { detail: msg }));
        return;
      }
      case 'bye':
        this.byeCode = msg.code;
        if (FATAL_CODES.has(msg.code)) this.fatalCode = msg.code;
        this.dispatchEvent(new CustomEvent('notice', { detail: msg }));
        if (this.fatalCode && this.ws) this.drop(this.ws);
        return;
      case 'resync':
        // A fresh snapshot follows; nothing to do until it arrives.
        return;
      default:
        if (msg.t === 'snapshot') {
          // A snapshot is the whole truth at its offset, even if that is lower than what we saw
          // before (a log that lost its tail): resume from here, not from the old maximum.
          this.lastOffset = msg.offset;
        } else if (typeof msg.offset === 'number') {
          // The meeting moved on: the server's storage works again.
          if (this.state === 'reconnecting' && msg.offset > (this.lastOffset ?? 0)) this.setState('open');
          this.lastOffset = Math.max(this.lastOffset ?? 0, msg.offset);
        }
        this.dispatchEvent(new CustomEvent('frame', { detail: msg }));
    }
  }

  /**
   * Sends a command (`{type: 'ask_question', …}`). Resolves with {offset} on `ack`, rejects with
   * a CommandError on `error`, on a dropped connection, or when offline.
   */
  send(cmd) {
    const usable = this.state === 'open' || this.state === 'reconnecting';
    if (!usable || !this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new CommandError(this.state === 'closed' ? this.closeCode || 'offline' : 'offline'));
    }
    const ref = this.nextRef++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(ref)) reject(new CommandError('timeout'));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(ref, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ t: 'cmd', ref, cmd }));
    });
  }
}
