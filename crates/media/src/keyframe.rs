//! Recognising the first packet of a keyframe in an RTP payload, per codec.
//!
//! The relay only switches a viewer to a new source or simulcast layer at a keyframe, and only
//! starts video for a new viewer at one; everything else is forwarded blind.

use str0m::format::Codec;
use str0m::rtp::Vp8Descriptor;

/// True if `payload` (without the RTP header) starts a keyframe of `codec`.
pub fn starts_keyframe(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Vp8 => Vp8Descriptor::parse(payload).is_ok_and(|d| d.starts_keyframe(payload)),
        Codec::H264 => h264_starts_keyframe(payload),
        _ => false,
    }
}

const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;
const H264_STAP_A: u8 = 24;
const H264_FU_A: u8 = 28;

/// RFC 6184: a single NAL unit, a STAP-A aggregate or the first FU-A fragment carrying an IDR
/// slice or a sequence parameter set (which encoders send right before the IDR).
fn h264_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&header) = payload.first() else {
        return false;
    };
    let is_key = |nal_type: u8| nal_type == H264_IDR || nal_type == H264_SPS;
    match header & 0x1f {
        H264_STAP_A => {
            let mut rest = &payload[1..];
            while rest.len() >= 3 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                if size == 0 || rest.len() < 2 + size {
                    return false;
                }
                if is_key(rest[2] & 0x1f) {
                    return true;
                }
                rest = &rest[2 + size..];
            }
            false
        }
        H264_FU_A => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && is_key(fu & 0x1f)),
        nal_type => is_key(nal_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// VP8 descriptor with X=1, I=1 (15-bit picture id), S=1, PID=0, then the payload header.
    fn vp8(keyframe: bool, start: bool) -> Vec<u8> {
        let s = if start { 0x10 } else { 0x00 };
        let p = if keyframe { 0x00 } else { 0x01 };
        vec![0x80 | s, 0x80, 0x80 | 0x12, 0x34, p, 0x9d, 0x01, 0x2a]
    }

    #[test]
    fn vp8_keyframe_only_at_its_start() {
        assert!(starts_keyframe(Codec::Vp8, &vp8(true, true)));
        assert!(!starts_keyframe(Codec::Vp8, &vp8(false, true)));
        assert!(!starts_keyframe(Codec::Vp8, &vp8(true, false)));
        assert!(!starts_keyframe(Codec::Vp8, &[]));
        assert!(!starts_keyframe(Codec::Vp8, &[0x90]));
    }

    #[test]
    fn h264_single_stap_and_fragment() {
        assert!(starts_keyframe(Codec::H264, &[0x65, 1, 2]));
        assert!(starts_keyframe(Codec::H264, &[0x67, 1, 2]));
        assert!(!starts_keyframe(Codec::H264, &[0x41, 1, 2]));
        // STAP-A with an SPS of 2 bytes inside.
        assert!(starts_keyframe(Codec::H264, &[0x78, 0, 2, 0x67, 0x42]));
        assert!(!starts_keyframe(Codec::H264, &[0x78, 0, 2, 0x41, 0x42]));
        // Truncated STAP-A is not a keyframe, and does not panic.
        assert!(!starts_keyframe(Codec::H264, &[0x78, 0, 9, 0x67]));
        // FU-A: start fragment of an IDR, and a middle fragment of one.
        assert!(starts_keyframe(Codec::H264, &[0x7c, 0x85, 0]));
        assert!(!starts_keyframe(Codec::H264, &[0x7c, 0x05, 0]));
    }

    #[test]
    fn other_codecs_never_claim_keyframes() {
        assert!(!starts_keyframe(Codec::Opus, &[0x65]));
    }
}
