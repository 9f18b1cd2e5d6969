//! Keeps one outgoing RTP stream continuous while its input changes.
//!
//! A viewer's m-line has one SSRC for its whole life, but what feeds it changes: another
//! simulcast layer, or another publisher taking the stage slot. Each input has its own sequence
//! numbers, timestamps and VP8 picture ids, so the relay shifts them by an offset chosen at the
//! switch so that the viewer sees one unbroken stream: sequence numbers go on by one, time goes
//! on by the wall-clock gap, picture ids by one. Within one input, gaps are kept (a lost packet
//! stays a gap the viewer can NACK) and late packets from before the switch are dropped.

/// Where the outgoing stream stands; pure state, no I/O.
#[derive(Debug, Clone)]
pub struct Rewriter {
    seq_offset: u64,
    ts_offset: u32,
    pid_offset: u16,
    tl0_offset: u8,
    /// First input sequence number of the current input; older ones are from before the switch.
    switch_seq: u64,
    last_seq: u64,
    last_ts: u32,
    last_pid: Option<u16>,
    last_tl0: Option<u8>,
    /// Wall time (ms, any epoch) of the last packet written.
    last_at_ms: Option<u64>,
}

/// One rewritten packet's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    pub seq: u64,
    pub ts: u32,
    /// New VP8 picture id (15 bits) and TL0PICIDX, when the input had them.
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
}

/// VP8 descriptor fields of an input packet, when it has them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vp8Ids {
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
}

const PID_MASK: u16 = 0x7fff;

impl Rewriter {
    /// A stream whose first output sequence number will be `first_seq`.
    pub fn new(first_seq: u16) -> Self {
        Rewriter {
            seq_offset: 0,
            ts_offset: 0,
            pid_offset: 0,
            tl0_offset: 0,
            switch_seq: 0,
            last_seq: u64::from(first_seq).wrapping_sub(1),
            last_ts: 0,
            last_pid: None,
            last_tl0: None,
            last_at_ms: None,
        }
    }

    /// Starts a new input at this packet: it becomes output `last + 1`, its timestamp follows
    /// the last one by the wall-clock gap (at least one tick), its picture id follows by one.
    pub fn switch(&mut self, seq: u64, ts: u32, ids: Vp8Ids, now_ms: u64, clock_rate: u32) {
        self.seq_offset = self.last_seq.wrapping_add(1).wrapping_sub(seq);
        self.switch_seq = seq;
        let ticks = match self.last_at_ms {
            Some(at) => (now_ms.saturating_sub(at) * u64::from(clock_rate) / 1000).max(1) as u32,
            None => 0,
        };
        self.ts_offset = self.last_ts.wrapping_add(ticks).wrapping_sub(ts);
        if let Some(pid) = ids.picture_id {
            let next = self.last_pid.map_or(pid, |p| p.wrapping_add(1) & PID_MASK);
            self.pid_offset = next.wrapping_sub(pid) & PID_MASK;
        }
        if let Some(tl0) = ids.tl0_pic_idx {
            let next = self.last_tl0.map_or(tl0, |t| t.wrapping_add(1));
            self.tl0_offset = next.wrapping_sub(tl0);
        }
    }

    /// Rewrites a packet of the current input; `None` for one from before the last switch.
    pub fn rewrite(&mut self, seq: u64, ts: u32, ids: Vp8Ids, now_ms: u64) -> Option<Rewritten> {
        if seq < self.switch_seq {
            return None;
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_ts = ts.wrapping_add(self.ts_offset);
        let picture_id = ids
            .picture_id
            .map(|p| p.wrapping_add(self.pid_offset) & PID_MASK);
        let tl0_pic_idx = ids.tl0_pic_idx.map(|t| t.wrapping_add(self.tl0_offset));
        // Only packets that move the stream forward move the reference points; a retransmitted
        // or reordered packet keeps its place.
        if out_seq.wrapping_sub(self.last_seq) < (1 << 15) {
            self.last_seq = out_seq;
            self.last_ts = out_ts;
            self.last_at_ms = Some(now_ms);
            if picture_id.is_some() {
                self.last_pid = picture_id;
            }
            if tl0_pic_idx.is_some() {
                self.last_tl0 = tl0_pic_idx;
            }
        }
        Some(Rewritten {
            seq: out_seq,
            ts: out_ts,
            picture_id,
            tl0_pic_idx,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NO_IDS: Vp8Ids = Vp8Ids {
        picture_id: None,
        tl0_pic_idx: None,
    };

    fn ids(pid: u16, tl0: u8) -> Vp8Ids {
        Vp8Ids {
            picture_id: Some(pid),
            tl0_pic_idx: Some(tl0),
        }
    }

    #[test]
    fn first_input_starts_at_the_chosen_sequence_number_and_keeps_gaps() {
        let mut r = Rewriter::new(100);
        r.switch(5000, 90_000, NO_IDS, 0, 90_000);
        assert_eq!(r.rewrite(5000, 90_000, NO_IDS, 0).unwrap().seq, 100);
        assert_eq!(r.rewrite(5001, 93_000, NO_IDS, 33).unwrap().seq, 101);
        // 5002 lost: the gap stays, so the viewer can NACK it.
        // The first input's first timestamp maps to 0; time moves with it.
        let out = r.rewrite(5003, 96_000, NO_IDS, 66).unwrap();
        assert_eq!((out.seq, out.ts), (103, 6_000));
        // The retransmission of 5002 keeps its place.
        assert_eq!(r.rewrite(5002, 93_000, NO_IDS, 70).unwrap().seq, 102);
    }

    #[test]
    fn a_switch_continues_sequence_time_and_picture_ids() {
        let mut r = Rewriter::new(1);
        r.switch(10, 1000, ids(300, 7), 0, 90_000);
        r.rewrite(10, 1000, ids(300, 7), 0).unwrap();
        r.rewrite(11, 4000, ids(301, 8), 33).unwrap();
        // A new input with unrelated numbering, 100 ms later.
        r.switch(60_000, 555, ids(20_000, 200), 133, 90_000);
        let out = r.rewrite(60_000, 555, ids(20_000, 200), 133).unwrap();
        assert_eq!(out.seq, 3);
        // Last output timestamp was 3000 (the first input started at 0), plus 100 ms.
        assert_eq!(out.ts, 3000 + 9000);
        assert_eq!(out.picture_id, Some(302));
        assert_eq!(out.tl0_pic_idx, Some(9));
        // Late packets of the new input from before the switch point are dropped.
        assert_eq!(r.rewrite(59_999, 0, NO_IDS, 134), None);
    }

    #[test]
    fn picture_ids_wrap_at_15_bits() {
        let mut r = Rewriter::new(1);
        r.switch(1, 0, ids(0x7fff, 255), 0, 90_000);
        r.rewrite(1, 0, ids(0x7fff, 255), 0).unwrap();
        let out = r.rewrite(2, 3000, ids(0, 0), 33).unwrap();
        assert_eq!((out.picture_id, out.tl0_pic_idx), (Some(0), Some(0)));
        r.switch(9, 0, ids(1234, 3), 66, 90_000);
        assert_eq!(
            r.rewrite(9, 0, ids(1234, 3), 66).unwrap().picture_id,
            Some(1)
        );
    }

    proptest! {
        /// Whatever the inputs and switch points, in-order packets give strictly increasing
        /// output sequence numbers with no repeats, and a switch never leaves a gap.
        #[test]
        fn output_sequence_numbers_never_repeat(
            inputs in prop::collection::vec((any::<u32>(), 1usize..40), 1..8),
            start in any::<u16>(),
        ) {
            let mut r = Rewriter::new(start);
            let mut seen = Vec::new();
            let mut now = 0;
            for (base, count) in inputs {
                let base = u64::from(base);
                r.switch(base, base as u32, NO_IDS, now, 90_000);
                for i in 0..count as u64 {
                    now += 10;
                    let out = r.rewrite(base + i, (base + i) as u32, NO_IDS, now).unwrap();
                    if let Some(&last) = seen.last() {
                        prop_assert_eq!(out.seq, last + 1);
                    }
                    seen.push(out.seq);
                }
            }
        }
    }
}
