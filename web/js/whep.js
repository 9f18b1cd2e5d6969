// WHEP viewer: receives the meeting's stage from /api/meetings/{id}/whep. It offers SLOTS video
// and SLOTS audio receive-only m-lines in the order video 0, audio 0, video 1, audio 1, …; the
// relay maps the k-th video and k-th audio m-line to stage slot k (docs/protocol.md §14).

import { MediaHttpError, MediaSession } from './media-session.js';

export const SLOTS = 4;

/** Quality choices: automatic, or one simulcast layer (rid). */
export const LAYERS = { auto: null, low: 'q', medium: 'h', high: 'f' };

export class WhepViewer extends MediaSession {
  constructor({ meeting }) {
    super({ endpoint: `${location.origin}/api/meetings/${encodeURIComponent(meeting)}/whep` });
    /** slots[k] = { video, audio }: the receiver tracks of slot k (new ones after a reconnect). */
    this.slots = [];
    this.layer = null;
  }

  build(pc) {
    this.slots = [];
    for (let k = 0; k < SLOTS; k++) {
      const video = pc.addTransceiver('video', { direction: 'recvonly' });
      const audio = pc.addTransceiver('audio', { direction: 'recvonly' });
      this.slots.push({ video: video.receiver.track, audio: audio.receiver.track });
    }
  }

  connected() {
    // A layer chosen before a reconnect still holds on the new session.
    if (this.layer) this.setLayer(this.layer).catch(() => {});
  }

  /** The URL of the layer route: announced in a Link header, else the documented path. */
  layerUrl() {
    const link = this.links.find((l) => l.rel === 'urn:ietf:params:whep:ext:core:layer');
    return link ? new URL(link.url, this.session).href : `${this.session}/layer`;
  }

  /** Chooses a simulcast layer ('q' | 'h' | 'f') or automatic (null). */
  async setLayer(rid) {
    this.layer = rid;
    if (!this.session) return;
    let res;
    try {
      res = await fetch(this.layerUrl(), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(rid ? { encodingId: rid } : {}),
        cache: 'no-store',
      });
    } catch (e) {
      throw new MediaHttpError(0, 'network', e.message);
    }
    if (!res.ok) {
      let code = '';
      try {
        code = (await res.json()).code;
      } catch {
        // keep the status
      }
      throw new MediaHttpError(res.status, code);
    }
  }
}
