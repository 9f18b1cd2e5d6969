//! The synthetic stream both publishers send (the WHIP publisher here and the load tester's
//! plain-RTP sender): VP8 frames at a steady frame rate and Opus every 20 ms, counted as they
//! leave. Only where the packets go differs (a WebRTC track for WHIP, a plain UDP socket for
//! Janus's RTP mountpoint), so that is the one thing each supplies.

use crate::rtc::publisher::{Counters, PublisherConfig};
use crate::rtc::{opus, vp8};
use bytes::Bytes;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::RwLock;

/// Where a stream's RTP packets go.
pub trait RtpSink: Send {
    /// Sends one packet; `false` when the destination is gone for good.
    fn send(
        &mut self,
        marker: bool,
        seq: u16,
        ts: u32,
        payload: Bytes,
    ) -> impl Future<Output = bool> + Send;
}

/// Video: `config.fps` frames a second of `packets_per_frame` packets, a keyframe every
/// `keyframe_interval` frames and whenever one was asked for; marker on a frame's last packet.
pub async fn send_video(
    mut sink: impl RtpSink,
    config: PublisherConfig,
    c: Arc<Counters>,
    gate: Arc<RwLock<()>>,
) {
    let fps = config.fps.max(1);
    let mut frames = vp8::Vp8Frames::new(config.packets_per_frame, config.video_payload);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / fps);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut seq, mut ts) = (rand::random::<u16>(), rand::random::<u32>());
    let mut frame_no = 0u64;
    loop {
        tick.tick().await;
        let _frame = gate.read().await;
        if c.paused.load(Relaxed) {
            continue;
        }
        let keyframe = frame_no.is_multiple_of(config.keyframe_interval.max(1))
            || c.keyframe_wanted.swap(false, Relaxed);
        let payloads = frames.frame(keyframe, c.video_packets.load(Relaxed));
        let last = payloads.len() - 1;
        for (i, p) in payloads.into_iter().enumerate() {
            let len = p.len() as u64;
            if !sink.send(i == last, seq, ts, p).await {
                return;
            }
            seq = seq.wrapping_add(1);
            c.video_packets.fetch_add(1, Relaxed);
            c.video_bytes.fetch_add(len, Relaxed);
        }
        c.video_frames.fetch_add(1, Relaxed);
        if keyframe {
            c.keyframes.fetch_add(1, Relaxed);
        }
        frame_no += 1;
        ts = ts.wrapping_add(vp8::VIDEO_CLOCK_RATE / fps);
    }
}

/// Audio: one Opus packet of `size` bytes every 20 ms; marker on the first of a talk spurt.
pub async fn send_audio(
    mut sink: impl RtpSink,
    size: usize,
    c: Arc<Counters>,
    gate: Arc<RwLock<()>>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut seq, mut ts) = (rand::random::<u16>(), rand::random::<u32>());
    let mut first = true;
    loop {
        tick.tick().await;
        let _packet = gate.read().await;
        if c.paused.load(Relaxed) {
            first = true;
            continue;
        }
        let payload = opus::payload(size, c.audio_packets.load(Relaxed));
        let len = payload.len() as u64;
        if !sink.send(first, seq, ts, payload).await {
            return;
        }
        first = false;
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(opus::PACKET_TICKS);
        c.audio_packets.fetch_add(1, Relaxed);
        c.audio_bytes.fetch_add(len, Relaxed);
    }
}
