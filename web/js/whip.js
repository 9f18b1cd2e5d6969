// WHIP publisher (RFC 9725): sends one video track (simulcast in three layers, VP8 preferred)
// and one audio track to /api/meetings/{id}/whip. Used by the studio page; the browser tests
// also publish a canvas through it.

import { MediaSession } from './media-session.js';

/** The three simulcast layers the relay knows (docs/protocol.md §14): quarter, half, full. */
export const SIMULCAST = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 1_800_000 },
];

/** One layer for a screen share: sharp text matters more than motion. */
const SCREEN = [{ maxBitrate: 2_500_000 }];

export function whipEndpoint(meeting, { source = 'camera', label = '' } = {}) {
  const q = new URLSearchParams({ source });
  if (label) q.set('label', label);
  return `${location.origin}/api/meetings/${encodeURIComponent(meeting)}/whip?${q}`;
}

/** Puts VP8 first among the codecs a transceiver may use (keeping the others as fallback). */
export function preferCodec(transceiver, mime = 'video/VP8') {
  if (!transceiver.setCodecPreferences) return;
  for (const caps of [RTCRtpSender.getCapabilities?.('video'), RTCRtpReceiver.getCapabilities?.('video')]) {
    if (!caps) continue;
    const codecs = [...caps.codecs].sort((a, b) => (b.mimeType === mime) - (a.mimeType === mime));
    try {
      transceiver.setCodecPreferences(codecs);
      return;
    } catch {
      // this browser checks against the other list: try it
    }
  }
}

export class WhipPublisher extends MediaSession {
  /** `video`, `audio`: MediaStreamTracks (either may be null); `layers`: 'simulcast' | 'screen'. */
  constructor({ meeting, token, source = 'camera', label = '', video = null, audio = null, layers = 'simulcast' }) {
    super({ endpoint: whipEndpoint(meeting, { source, label }), token, maxAttempts: 6 });
    this.source = source;
    this.tracks = { video, audio };
    this.layers = layers;
    this.senders = { video: null, audio: null };
  }

  build(pc) {
    const { video, audio } = this.tracks;
    if (video) {
      if (this.layers === 'screen' && 'contentHint' in video) video.contentHint = 'detail';
      const tr = pc.addTransceiver(video, {
        direction: 'sendonly',
        sendEncodings: this.layers === 'simulcast' ? SIMULCAST.map((e) => ({ ...e })) : SCREEN.map((e) => ({ ...e })),
      });
      preferCodec(tr);
      this.senders.video = tr.sender;
    }
    if (audio) this.senders.audio = pc.addTransceiver(audio, { direction: 'sendonly' }).sender;
  }

  /** Swaps a track (another camera or microphone) without a new session. */
  async replaceTrack(kind, track) {
    this.tracks[kind] = track;
    const sender = this.senders[kind];
    if (sender && this.pc && this.pc.connectionState !== 'closed') await sender.replaceTrack(track);
  }
}
