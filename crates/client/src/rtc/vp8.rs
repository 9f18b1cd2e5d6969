//! Synthetic but well-formed VP8 RTP payloads (RFC 7741) and keyframe detection.
//!
//! The relay never decodes video, but it does read the payload descriptor and the VP8 payload
//! header to find keyframes (to start a viewer and to switch layers), so those must be right.
//! Every payload ends with a [`trailer`](crate::rtc::trailer) that numbers it, so a viewer can
//! tell which of the publisher's packets it got even if the relay rewrites RTP headers.

use bytes::{BufMut, Bytes, BytesMut};

/// 90 kHz RTP clock, 30 frames per second.
pub const VIDEO_CLOCK_RATE: u32 = 90_000;
pub const FRAME_TICKS: u32 = VIDEO_CLOCK_RATE / 30;

/// Descriptor: X=1, S=1 (start of partition), PID=0; then I=1; then a 15-bit picture id (M=1).
const DESCRIPTOR_LEN: usize = 4;
/// Keyframe payload header: 3-byte frame tag, start code, 14-bit width and height.
const KEYFRAME_HEADER_LEN: usize = 10;

/// Writes the 4-byte payload descriptor of RFC 7741 §4.2 with a 15-bit picture id.
pub fn descriptor(buf: &mut BytesMut, start_of_frame: bool, picture_id: u16) {
    let s = if start_of_frame { 0x10 } else { 0 };
    buf.put_u8(0x80 | s); // X=1, N=0, S, PID=0
    buf.put_u8(0x80); // I=1
    buf.put_u16(0x8000 | (picture_id & 0x7fff)); // M=1, 15-bit PictureID
}

/// Writes the VP8 payload header (RFC 7741 §4.3, RFC 6386 §9.1) at the start of a frame.
/// P (bit 0 of the first byte) is 0 on keyframes, which also carry the start code and size.
pub fn payload_header(buf: &mut BytesMut, keyframe: bool, first_partition_size: u32) {
    let p = u32::from(!keyframe);
    let show_frame = 1 << 4;
    let tag = (first_partition_size.min(0x7ffff) << 5) | show_frame | p;
    buf.put_slice(&tag.to_le_bytes()[..3]);
    if keyframe {
        buf.put_slice(&[0x9d, 0x01, 0x2a]);
        buf.put_u16_le(1280); // width, no scaling
        buf.put_u16_le(720); // height, no scaling
    }
}

/// Whether an RTP payload carries the start of a VP8 keyframe: S=1, PID=0 and P=0.
pub fn is_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let (x, s, pid) = (b0 & 0x80 != 0, b0 & 0x10 != 0, b0 & 0x07);
    if !s || pid != 0 {
        return false;
    }
    let mut i = 1;
    if x {
        let Some(&ext) = payload.get(1) else {
            return false;
        };
        i = 2;
        if ext & 0x80 != 0 {
            // I: PictureID, 7 or 15 bits.
            match payload.get(i) {
                Some(b) if b & 0x80 != 0 => i += 2,
                Some(_) => i += 1,
                None => return false,
            }
        }
        if ext & 0x40 != 0 {
            i += 1; // L: TL0PICIDX
        }
        if ext & 0x30 != 0 {
            i += 1; // T or K: TID/Y/KEYIDX
        }
    }
    payload.get(i).is_some_and(|b| b & 0x01 == 0)
}

/// Cuts synthetic frames into RTP payloads of a fixed size.
#[derive(Debug, Clone)]
pub struct Vp8Frames {
    /// Packets per frame (at least 1).
    pub packets_per_frame: usize,
    /// RTP payload size in bytes, descriptor and trailer included.
    pub payload_size: usize,
    picture_id: u16,
}

impl Vp8Frames {
    pub fn new(packets_per_frame: usize, payload_size: usize) -> Self {
        let min = DESCRIPTOR_LEN + KEYFRAME_HEADER_LEN + crate::rtc::trailer::LEN;
        Self {
            packets_per_frame: packets_per_frame.max(1),
            payload_size: payload_size.max(min),
            picture_id: 0,
        }
    }

    /// The payloads of the next frame; `first_index` numbers the first one's trailer.
    pub fn frame(&mut self, keyframe: bool, first_index: u64) -> Vec<Bytes> {
        let picture_id = self.picture_id;
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        let body = self.payload_size - DESCRIPTOR_LEN - crate::rtc::trailer::LEN;
        let frame_size = (body * self.packets_per_frame) as u32;
        (0..self.packets_per_frame)
            .map(|n| {
                let mut buf = BytesMut::with_capacity(self.payload_size);
                descriptor(&mut buf, n == 0, picture_id);
                if n == 0 {
                    payload_header(&mut buf, keyframe, frame_size);
                }
                let fill = self.payload_size - crate::rtc::trailer::LEN;
                buf.resize(fill, (picture_id as u8) ^ 0x5a);
                crate::rtc::trailer::put(&mut buf, first_index + n as u64);
                buf.freeze()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_starts_with_p_zero_and_start_code() {
        let mut f = Vp8Frames::new(3, 1100);
        let key = f.frame(true, 0);
        assert_eq!(key.len(), 3);
        assert!(key.iter().all(|p| p.len() == 1100));
        assert_eq!(key[0][0], 0x90, "X=1, S=1, PID=0");
        assert_eq!(key[1][0], 0x80, "continuation: S=0");
        assert_eq!(key[0][4] & 1, 0, "P=0 on a keyframe");
        assert_eq!(&key[0][7..10], &[0x9d, 0x01, 0x2a]);
        assert!(is_keyframe(&key[0]));
        assert!(
            !is_keyframe(&key[1]),
            "only the first packet starts the frame"
        );
        let delta = f.frame(false, 3);
        assert_eq!(delta[0][4] & 1, 1, "P=1 on an interframe");
        assert!(!is_keyframe(&delta[0]));
    }

    #[test]
    fn picture_id_counts_frames_and_wraps_at_15_bits() {
        let mut f = Vp8Frames::new(1, 100);
        let a = f.frame(true, 0);
        let b = f.frame(false, 1);
        assert_eq!(u16::from_be_bytes([a[0][2], a[0][3]]), 0x8000);
        assert_eq!(u16::from_be_bytes([b[0][2], b[0][3]]), 0x8001);
        f.picture_id = 0x7fff;
        let c = f.frame(false, 2);
        assert_eq!(u16::from_be_bytes([c[0][2], c[0][3]]), 0xffff);
        assert_eq!(f.picture_id, 0);
    }

    #[test]
    fn trailers_number_the_packets() {
        let mut f = Vp8Frames::new(4, 200);
        let frame = f.frame(false, 40);
        let idx: Vec<u64> = frame
            .iter()
            .map(|p| crate::rtc::trailer::read(p).unwrap())
            .collect();
        assert_eq!(idx, vec![40, 41, 42, 43]);
    }

    #[test]
    fn detects_keyframes_with_other_descriptor_layouts() {
        // Minimal descriptor: S=1, PID=0, then P=0.
        assert!(is_keyframe(&[0x10, 0x00]));
        assert!(!is_keyframe(&[0x10, 0x01]));
        // PID != 0 is not a frame start.
        assert!(!is_keyframe(&[0x11, 0x00]));
        // X with 7-bit picture id, TL0PICIDX and TID: descriptor is 5 bytes.
        assert!(is_keyframe(&[0x90, 0xe0, 0x05, 0x07, 0x20, 0x00]));
        assert!(!is_keyframe(&[0x90, 0xe0, 0x05, 0x07, 0x20, 0x01]));
        assert!(!is_keyframe(&[]));
        assert!(!is_keyframe(&[0x90, 0x80]));
    }
}
