//! Recent event frames of a room, so a reconnecting client gets exactly what it missed.

use axum::extract::ws::Utf8Bytes;
use std::collections::VecDeque;
use townhall_core::Offset;
use townhall_core::fanout::Audience;

#[derive(Debug)]
pub struct Frame {
    pub offset: Offset,
    pub audience: Audience,
    pub bytes: Utf8Bytes,
}

/// A bounded ring of serialised `event` frames in offset order.
#[derive(Debug)]
pub struct History {
    frames: VecDeque<Frame>,
    capacity: usize,
    /// Every frame with an offset above this is still here.
    complete_after: Offset,
}

impl History {
    /// Starts empty: frames up to `offset` (already in the log when the room started) are not here.
    pub fn new(capacity: usize, offset: Offset) -> Self {
        Self {
            frames: VecDeque::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
            complete_after: offset,
        }
    }

    pub fn push(&mut self, frame: Frame) {
        if self.frames.len() == self.capacity
            && let Some(old) = self.frames.pop_front()
        {
            // Frames of one offset may straddle the cut; drop the rest of that offset too.
            self.complete_after = old.offset;
            while self.frames.front().is_some_and(|f| f.offset == old.offset) {
                self.frames.pop_front();
            }
        }
        self.frames.push_back(frame);
    }

    /// Frames after `since`, or `None` if some of them are no longer kept.
    pub fn after(&self, since: Offset) -> Option<impl Iterator<Item = &Frame>> {
        (since >= self.complete_after).then(|| {
            let start = self.frames.partition_point(|f| f.offset <= since);
            self.frames.range(start..)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(offset: Offset) -> Frame {
        Frame {
            offset,
            audience: Audience::EVERYONE,
            bytes: Utf8Bytes::from(offset.to_string()),
        }
    }

    #[test]
    fn returns_exactly_the_frames_after_an_offset() {
        let mut h = History::new(4, 10);
        for o in [11, 12, 12, 13] {
            h.push(frame(o));
        }
        let got: Vec<Offset> = h.after(11).unwrap().map(|f| f.offset).collect();
        assert_eq!(got, vec![12, 12, 13]);
        assert_eq!(h.after(13).unwrap().count(), 0);
        assert!(
            h.after(9).is_none(),
            "offsets before the room started are not kept"
        );
    }

    #[test]
    fn eviction_moves_the_horizon_by_whole_offsets() {
        let mut h = History::new(3, 0);
        for o in [1, 2, 2, 3] {
            h.push(frame(o));
        }
        // Pushing 3 evicted offset 1; 2 stays whole.
        assert!(h.after(0).is_none());
        assert_eq!(h.after(1).unwrap().count(), 3);
        h.push(frame(4));
        // Evicting one frame of offset 2 drops the other one too.
        assert!(h.after(1).is_none());
        assert_eq!(
            h.after(2).unwrap().map(|f| f.offset).collect::<Vec<_>>(),
            vec![3, 4]
        );
    }
}
