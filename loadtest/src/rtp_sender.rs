//! Plain (unencrypted) RTP over UDP with the same synthetic VP8 and Opus streams as
//! [`WhipPublisher`](townhall_client::rtc::WhipPublisher): same payload sizes, packets per frame, frame
//! rate and keyframe interval. Feeds an RTP mountpoint of Janus's streaming plugin, so Janus
//! and townhall relay the same load.

use bytes::{BufMut, Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::RwLock;
use tokio::task::JoinHandle;
use townhall_client::rtc::publisher::Counters;
use townhall_client::rtc::source::{RtpSink, send_audio, send_video};
use townhall_client::rtc::{PublisherConfig, PublisherStats};

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
            let sink = UdpSink {
                socket,
                pt: VIDEO_PAYLOAD_TYPE,
                ssrc: rand::random(),
            };
            tasks.push(tokio::spawn(send_video(
                sink,
                config.clone(),
                counters.clone(),
                gate.clone(),
            )));
        }
        if let Some(to) = audio.filter(|_| config.audio) {
            let socket = bound_for(to).await?;
            let sink = UdpSink {
                socket,
                pt: AUDIO_PAYLOAD_TYPE,
                ssrc: rand::random(),
            };
            tasks.push(tokio::spawn(send_audio(
                sink,
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
        self.counters.pause(&self.gate).await;
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

/// The plain sender's packets go straight to a UDP socket, with an RTP header of our own.
struct UdpSink {
    socket: UdpSocket,
    pt: u8,
    ssrc: u32,
}

impl RtpSink for UdpSink {
    async fn send(&mut self, marker: bool, seq: u16, ts: u32, payload: Bytes) -> bool {
        let pkt = rtp_packet(self.pt, marker, seq, ts, self.ssrc, &payload);
        // A full socket buffer or an ICMP "port unreachable" (Janus not up yet) loses the
        // packet, as a real encoder's would be; it is still counted as sent.
        let _ = self.socket.send(&pkt).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use townhall_client::rtc::{trailer, vp8};

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
