//! Receive-side accounting for one RTP stream: counts, loss from sequence numbers, RFC 3550
//! interarrival jitter, and which publisher packets (by trailer index) arrived.
//!
//! Pure: the caller passes the arrival time, so tests need no clock.

use std::time::Duration;

/// Sequence numbers remembered for duplicate detection (a bitmap behind the highest one).
const WINDOW: u64 = 1024;

#[derive(Debug, Clone)]
pub struct RtpAccount {
    clock_rate: u32,
    /// Unique packets (duplicates excluded).
    pub packets: u64,
    pub duplicates: u64,
    /// Payload bytes of unique packets.
    pub bytes: u64,
    pub keyframes: u64,
    /// Since the viewer started, when the first packet / first keyframe start arrived.
    pub first_packet: Option<Duration>,
    pub first_keyframe: Option<Duration>,
    pub last_packet: Option<Duration>,
    /// Lowest and highest trailer index seen, and how many unique packets carried one at or
    /// after the first keyframe.
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    pub first_keyframe_index: Option<u64>,
    pub indexed_since_keyframe: u64,
    /// Keyframe requests sent while waiting for the first keyframe (kept here by the viewer).
    pub plis_sent: u64,
    base_seq: u64,
    max_seq: Option<u64>,
    seen: [u64; (WINDOW / 64) as usize],
    /// RFC 3550 §6.4.1 interarrival jitter, in RTP timestamp units.
    jitter: f64,
    last_transit: Option<i64>,
}

impl RtpAccount {
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            packets: 0,
            duplicates: 0,
            bytes: 0,
            keyframes: 0,
            first_packet: None,
            first_keyframe: None,
            last_packet: None,
            first_index: None,
            last_index: None,
            first_keyframe_index: None,
            indexed_since_keyframe: 0,
            plis_sent: 0,
            base_seq: 0,
            max_seq: None,
            seen: [0; (WINDOW / 64) as usize],
            jitter: 0.0,
            last_transit: None,
        }
    }

    /// Records one packet that arrived `at` after the viewer started.
    pub fn record(
        &mut self,
        at: Duration,
        seq: u16,
        timestamp: u32,
        payload_len: usize,
        keyframe: bool,
        index: Option<u64>,
    ) {
        let ext = self.extend(seq);
        if !self.mark(ext) {
            self.duplicates += 1;
            return;
        }
        self.packets += 1;
        self.bytes += payload_len as u64;
        self.first_packet.get_or_insert(at);
        self.last_packet = Some(at);
        if keyframe {
            self.keyframes += 1;
            if self.first_keyframe.is_none() {
                self.first_keyframe = Some(at);
                self.first_keyframe_index = index;
            }
        }
        if let Some(i) = index {
            self.first_index = Some(self.first_index.map_or(i, |f| f.min(i)));
            self.last_index = Some(self.last_index.map_or(i, |l| l.max(i)));
            if self.first_keyframe_index.is_some_and(|k| i >= k) {
                self.indexed_since_keyframe += 1;
            }
        }
        self.update_jitter(at, timestamp);
    }

    /// RFC 3550 A.1 in spirit: extends a 16-bit sequence number to 64 bits around the highest.
    fn extend(&self, seq: u16) -> u64 {
        let Some(max) = self.max_seq else {
            return (1 << 16) + u64::from(seq); // room below for reordered early packets
        };
        let delta = i64::from(seq.wrapping_sub(max as u16) as i16);
        (max as i64 + delta).max(0) as u64
    }

    /// Marks `ext` as received; false if it was already (a duplicate) or is too old to know.
    fn mark(&mut self, ext: u64) -> bool {
        match self.max_seq {
            None => {
                self.base_seq = ext;
                self.max_seq = Some(ext);
            }
            Some(max) if ext > max => {
                for s in (max + 1).max(ext.saturating_sub(WINDOW - 1))..ext {
                    self.clear(s);
                }
                self.max_seq = Some(ext);
            }
            Some(max) if max - ext >= WINDOW => return false,
            Some(_) => {
                if ext < self.base_seq {
                    self.base_seq = ext;
                }
                if self.is_set(ext) {
                    return false;
                }
            }
        }
        self.set(ext);
        true
    }

    fn bit(ext: u64) -> (usize, u64) {
        let slot = ext % WINDOW;
        ((slot / 64) as usize, 1 << (slot % 64))
    }
    fn set(&mut self, ext: u64) {
        let (w, m) = Self::bit(ext);
        self.seen[w] |= m;
    }
    fn clear(&mut self, ext: u64) {
        let (w, m) = Self::bit(ext);
        self.seen[w] &= !m;
    }
    fn is_set(&self, ext: u64) -> bool {
        let (w, m) = Self::bit(ext);
        self.seen[w] & m != 0
    }

    fn update_jitter(&mut self, at: Duration, timestamp: u32) {
        let arrival = (at.as_secs_f64() * f64::from(self.clock_rate)).round() as i64;
        // Transit differences only matter modulo 2^32, like the timestamps themselves.
        let transit = arrival.wrapping_sub(i64::from(timestamp));
        if let Some(last) = self.last_transit {
            let d = f64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// Packets expected from the sequence numbers (RFC 3550 A.3).
    pub fn expected(&self) -> u64 {
        self.max_seq.map_or(0, |m| m - self.base_seq + 1)
    }

    /// Packets lost by sequence number (never negative).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.packets)
    }

    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / f64::from(self.clock_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn counts_loss_from_gaps_and_ignores_duplicates() {
        let mut a = RtpAccount::new(90_000);
        for seq in [10u16, 11, 13, 13, 14] {
            a.record(ms(0), seq, 0, 100, false, None);
        }
        assert_eq!(a.packets, 4);
        assert_eq!(a.duplicates, 1);
        assert_eq!(a.expected(), 5);
        assert_eq!(a.lost(), 1);
        assert_eq!(a.bytes, 400);
        // The late packet fills the gap.
        a.record(ms(0), 12, 0, 100, false, None);
        assert_eq!(a.lost(), 0);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut a = RtpAccount::new(48_000);
        for seq in [65534u16, 65535, 0, 1] {
            a.record(ms(0), seq, 0, 1, false, None);
        }
        assert_eq!((a.packets, a.expected(), a.lost()), (4, 4, 0));
        // Reordered across the wrap.
        let mut b = RtpAccount::new(48_000);
        for seq in [65535u16, 1, 0] {
            b.record(ms(0), seq, 0, 1, false, None);
        }
        assert_eq!((b.packets, b.expected(), b.lost()), (3, 3, 0));
    }

    #[test]
    fn a_packet_older_than_the_window_is_not_counted_twice() {
        let mut a = RtpAccount::new(90_000);
        a.record(ms(0), 0, 0, 1, false, None);
        a.record(ms(0), 2000, 0, 1, false, None);
        a.record(ms(0), 0, 0, 1, false, None);
        assert_eq!((a.packets, a.duplicates), (2, 1));
    }

    #[test]
    fn jitter_is_zero_for_a_steady_stream_and_follows_rfc3550() {
        let mut a = RtpAccount::new(48_000);
        for n in 0..50u64 {
            a.record(ms(20 * n), n as u16, (960 * n) as u32, 10, false, None);
        }
        assert_eq!(a.jitter_ms(), 0.0);
        // One packet 16 ms late: D = 768 ticks, J = 768/16 = 48 ticks = 1 ms.
        let mut b = RtpAccount::new(48_000);
        b.record(ms(0), 0, 0, 10, false, None);
        b.record(ms(36), 1, 960, 10, false, None);
        assert!((b.jitter_ms() - 1.0).abs() < 0.01, "{}", b.jitter_ms());
    }

    #[test]
    fn first_keyframe_and_trailer_indices() {
        let mut a = RtpAccount::new(90_000);
        a.record(ms(5), 100, 0, 10, false, Some(7));
        a.record(ms(9), 101, 0, 10, true, Some(8));
        a.record(ms(12), 102, 0, 10, false, Some(9));
        assert_eq!(a.first_packet, Some(ms(5)));
        assert_eq!(a.first_keyframe, Some(ms(9)));
        assert_eq!(a.first_keyframe_index, Some(8));
        assert_eq!((a.first_index, a.last_index), (Some(7), Some(9)));
        assert_eq!(a.indexed_since_keyframe, 2);
        assert_eq!(a.keyframes, 1);
    }
}
