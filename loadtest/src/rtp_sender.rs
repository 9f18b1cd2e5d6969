//! Plain (unencrypted) RTP over UDP with the same synthetic VP8 and Opus streams as
//! [`WhipPublisher`](crate::rtc::WhipPublisher): same payload sizes, packets per frame, frame
//! rate and keyframe interval. Feeds an RTP mountpoint of Janus's streaming plugin, so Janus
//! and townhall relay the same load.

use crate::rtc::publisher::Counters;
use crate::rtc::{PublisherConfig, PublisherStats, opus, vp8};
use bytes::{BufMut, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

pub const VIDEO_PAYLOAD_TYPE: u8 = 96;
pub const AUDIO_PAYLOAD_TYPE: u8 = 111;

/// A 12-byte RTP header (RFC 3550 §5.1: V=2, no padding, extension or CSRC) and the payload.
pub fn rtp_packet(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> BytesMut {
    let mut b = BytesMut::with_capacity(12 + payload.len());
    b.put_u8(0x80);
    b.put_u8((u8::from(marker) << 7) | (pt & 0x7f));
    b.put_u16(seq);
    b.put_u32(ts);
    b.put_u32(ssrc);
    b.put_slice(payload);
    b
}

/// Sends until dropped or [`PlainRtpSender::close`]d.
#[derive(Debug)]
pub struct PlainRtpSender {
    counters: Arc<Counters>,
    gate: Arc<RwLock<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl PlainRtpSender {
    /// Starts sending video to `video` and audio to `audio` (either may be `None`).
    pub async fn start(
        video: Option<SocketAddr>,
        audio: Option<SocketAddr>,
        config: PublisherConfig,
    ) -> std::io::Result<Self> {
        let counters = Arc::new(Counters::default());
        let gate = Arc::new(RwLock::new(()));
        let mut tasks = Vec::new();
        if let Some(to) = video.filter(|_| config.video) {
            let socket = bound_for(to).await?;
            tasks.push(tokio::spawn(send_video(
                socket,
                config.clone(),
                counters.clone(),
                gate.clone(),
            )));
        }
        if let Some(to) = audio.filter(|_| config.audio) {
            let socket = bound_for(to).await?;
            tasks.push(tokio::spawn(send_audio(
                socket,
                config.audio_payload,
                counters.clone(),
                gate.clone(),
            )));
        }
        Ok(Self {
            counters,
            gate,
            tasks,
        })
    }

    /// Counts in the shape of the WHIP publisher's (no keyframe requests: plain RTP has no
    /// feedback channel here).
    pub fn stats(&self) -> PublisherStats {
        self.counters.stats()
    }

    /// Stops sending after the current frame; when this returns the counts no longer move.
    pub async fn pause(&self) {
        self.counters.paused.store(true, Relaxed);
        drop(self.gate.write().await);
    }

    pub fn close(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for PlainRtpSender {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

async fn bound_for(to: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = if to.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(any).await?;
    socket.connect(to).await?;
    Ok(socket)
}

async fn send_video(
    socket: UdpSocket,
    config: PublisherConfig,
    c: Arc<Counters>,
    gate: Arc<RwLock<()>>,
) {
    let fps = config.fps.max(1);
    let mut frames = vp8::Vp8Frames::new(config.packets_per_frame, config.video_payload);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / fps);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (ssrc, mut seq, mut ts) = (
        rand::random::<u32>(),
        rand::random::<u16>(),
        rand::random::<u32>(),
    );
    let mut frame_no = 0u64;
    loop {
        tick.tick().await;
        let _frame = gate.read().await;
        if c.paused.load(Relaxed) {
            continue;
        }
        let keyframe = frame_no.is_multiple_of(config.keyframe_interval.max(1));
        let payloads = frames.frame(keyframe, c.video_packets.load(Relaxed));
        let last = payloads.len() - 1;
        for (i, p) in payloads.into_iter().enumerate() {
            let pkt = rtp_packet(VIDEO_PAYLOAD_TYPE, i == last, seq, ts, ssrc, &p);
            // A full socket buffer or an ICMP "port unreachable" (Janus not up yet) loses
            // the packet, as a real encoder's would be; it is still counted as sent.
            let _ = socket.send(&pkt).await;
            seq = seq.wrapping_add(1);
            c.video_packets.fetch_add(1, Relaxed);
            c.video_bytes.fetch_add(p.len() as u64, Relaxed);
        }
        c.video_frames.fetch_add(1, Relaxed);
        if keyframe {
            c.keyframes.fetch_add(1, Relaxed);
        }
        frame_no += 1;
        ts = ts.wrapping_add(vp8::VIDEO_CLOCK_RATE / fps);
    }
}

async fn send_audio(socket: UdpSocket, size: usize, c: Arc<Counters>, gate: Arc<RwLock<()>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (ssrc, mut seq, mut ts) = (
        rand::random::<u32>(),
        rand::random::<u16>(),
        rand::random::<u32>(),
    );
    let mut first = true;
    loop {
        tick.tick().await;
        let _packet = gate.read().await;
        if c.paused.load(Relaxed) {
            first = true;
            continue;
        }
        let payload = opus::payload(size, c.audio_packets.load(Relaxed));
        let pkt = rtp_packet(AUDIO_PAYLOAD_TYPE, first, seq, ts, ssrc, &payload);
        let _ = socket.send(&pkt).await;
        first = false;
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(opus::PACKET_TICKS);
        c.audio_packets.fetch_add(1, Relaxed);
        c.audio_bytes.fetch_add(payload.len() as u64, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtc::trailer;

    #[test]
    fn header_fields_are_where_rfc_3550_puts_them() {
        let p = rtp_packet(96, true, 0x1234, 0xdead_beef, 7, b"xy");
        assert_eq!(
            &p[..],
            &[
                0x80,
                0x80 | 96,
                0x12,
                0x34,
                0xde,
                0xad,
                0xbe,
                0xef,
                0,
                0,
                0,
                7,
                b'x',
                b'y'
            ]
        );
        assert_eq!(rtp_packet(111, false, 0, 0, 0, &[])[1], 111);
    }

    #[tokio::test]
    async fn sends_numbered_vp8_and_opus_at_the_configured_sizes() {
        let video = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let audio = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let config = PublisherConfig::default();
        let sender = PlainRtpSender::start(
            Some(video.local_addr().unwrap()),
            Some(audio.local_addr().unwrap()),
            config.clone(),
        )
        .await
        .unwrap();
        let mut buf = [0u8; 2048];
        let n = video.recv(&mut buf).await.unwrap();
        assert_eq!(n, 12 + config.video_payload);
        assert_eq!(buf[1] & 0x7f, VIDEO_PAYLOAD_TYPE);
        assert!(
            vp8::is_keyframe(&buf[12..n]),
            "the stream starts with a keyframe"
        );
        assert_eq!(trailer::read(&buf[12..n]), Some(0));
        let n = audio.recv(&mut buf).await.unwrap();
        assert_eq!(n, 12 + config.audio_payload);
        assert_eq!(
            buf[1],
            0x80 | AUDIO_PAYLOAD_TYPE,
            "marker on the first audio packet"
        );
        sender.pause().await;
        let s = sender.stats();
        assert!(s.video_packets >= 3 && s.audio_packets >= 1);
        assert_eq!(s.last_video_index, Some(s.video_packets - 1));
        sender.close();
    }
}
