// Connection quality from RTCPeerConnection.getStats(), for the studio page (what is sent) and
// the viewer page (what is received). Pure functions of two reports, so that they can be
// computed every couple of seconds without keeping state elsewhere.

function byType(report, type) {
  const out = [];
  if (report) report.forEach((s) => s.type === type && out.push(s));
  return out;
}

/** Round-trip time in ms of the connection in use (the nominated, succeeded candidate pair). */
export function roundTripMs(report) {
  const pairs = byType(report, 'candidate-pair').filter((p) => p.state === 'succeeded' && p.currentRoundTripTime !== undefined);
  const pair = pairs.find((p) => p.nominated) || pairs[0];
  if (pair) return Math.round(pair.currentRoundTripTime * 1000);
  const remote = byType(report, 'remote-inbound-rtp').find((r) => r.roundTripTime !== undefined);
  return remote ? Math.round(remote.roundTripTime * 1000) : null;
}

function sum(list, field) {
  return list.reduce((a, s) => a + (s[field] || 0), 0);
}

/** Bits per second of `field` (bytesSent / bytesReceived) over `type` streams between reports. */
function bitrate(report, prev, type, field) {
  if (!report || !prev) return null;
  const now = byType(report, type);
  const before = new Map(byType(prev, type).map((s) => [s.id, s]));
  let bytes = 0;
  let ms = 0;
  for (const s of now) {
    const p = before.get(s.id);
    if (!p) continue;
    bytes += (s[field] || 0) - (p[field] || 0);
    ms = Math.max(ms, s.timestamp - p.timestamp);
  }
  return ms > 0 ? Math.max(0, Math.round((bytes * 8 * 1000) / ms)) : null;
}

/** Rates "good" | "fair" | "poor" from round trip and loss (and a limited encoder). */
function grade(rttMs, lossPct, limited) {
  if ((rttMs !== null && rttMs > 400) || lossPct > 5) return 'poor';
  if ((rttMs !== null && rttMs > 150) || lossPct > 1 || limited) return 'fair';
  return 'good';
}

/**
 * What the studio shows about a publisher: { rttMs, bitrate (bit/s), lost, lossPct,
 * limitation ('none' | 'bandwidth' | 'cpu' | 'other'), layers: [{rid, width, height}], grade }.
 */
export function sendQuality(report, prev) {
  const out = byType(report, 'outbound-rtp');
  const video = out.filter((s) => s.kind === 'video');
  const remote = byType(report, 'remote-inbound-rtp');
  const lost = Math.max(0, sum(remote, 'packetsLost'));
  const sent = sum(out, 'packetsSent');
  const lossPct = sent ? (lost * 100) / (sent + lost) : 0;
  const reasons = video.map((s) => s.qualityLimitationReason).filter((r) => r && r !== 'none');
  const limitation = reasons.includes('bandwidth') ? 'bandwidth' : reasons.includes('cpu') ? 'cpu' : reasons[0] || 'none';
  const layers = video
    .filter((s) => s.frameWidth && s.active !== false)
    .map((s) => ({ rid: s.rid || '', width: s.frameWidth, height: s.frameHeight }))
    .sort((a, b) => a.width - b.width);
  const rttMs = roundTripMs(report);
  return {
    rttMs,
    bitrate: bitrate(report, prev, 'outbound-rtp', 'bytesSent'),
    lost,
    lossPct,
    limitation,
    layers,
    grade: grade(rttMs, lossPct, limitation !== 'none'),
  };
}

/** What the viewer shows: { rttMs, bitrate, lossPct, width, height, fps, grade } of the video
 *  it receives (the largest picture, when several). */
export function receiveQuality(report, prev) {
  const inbound = byType(report, 'inbound-rtp');
  const video = inbound.filter((s) => s.kind === 'video' && s.frameWidth).sort((a, b) => b.frameWidth - a.frameWidth)[0];
  const lost = Math.max(0, sum(inbound, 'packetsLost'));
  const got = sum(inbound, 'packetsReceived');
  const lossPct = got ? (lost * 100) / (got + lost) : 0;
  const rttMs = roundTripMs(report);
  return {
    rttMs,
    bitrate: bitrate(report, prev, 'inbound-rtp', 'bytesReceived'),
    lossPct,
    width: video?.frameWidth || 0,
    height: video?.frameHeight || 0,
    fps: video?.framesPerSecond ? Math.round(video.framesPerSecond) : 0,
    grade: grade(rttMs, lossPct, false),
  };
}

/** "1.2 Mbit/s" / "350 kbit/s". */
export function formatBitrate(bps, lang) {
  if (bps === null || bps === undefined) return '–';
  const loc = lang === 'da' ? 'da-DK' : 'en-GB';
  if (bps >= 1_000_000) return `${(bps / 1_000_000).toLocaleString(loc, { maximumFractionDigits: 1 })} Mbit/s`;
  return `${Math.round(bps / 1000).toLocaleString(loc)} kbit/s`;
}
