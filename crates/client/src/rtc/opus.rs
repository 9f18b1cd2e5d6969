//! Synthetic Opus payloads: 20 ms packets, 50 per second on the 48 kHz RTP clock.

use bytes::{BufMut, Bytes, BytesMut};

pub const AUDIO_CLOCK_RATE: u32 = 48_000;
/// RTP timestamp ticks per 20 ms packet.
pub const PACKET_TICKS: u32 = AUDIO_CLOCK_RATE / 50;

/// A payload of `size` bytes: a TOC byte (SILK wideband 20 ms, mono, one frame), filler and the
/// numbered trailer.
pub fn payload(size: usize, index: u64) -> Bytes {
    let size = size.max(1 + crate::rtc::trailer::LEN);
    let mut buf = BytesMut::with_capacity(size);
    buf.put_u8(0x48);
    buf.resize(size - crate::rtc::trailer::LEN, 0xa5);
    crate::rtc::trailer::put(&mut buf, index);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    #[test]
    fn payload_has_toc_size_and_index() {
        let p = super::payload(80, 9);
        assert_eq!(p.len(), 80);
        assert_eq!(p[0], 0x48);
        assert_eq!(crate::rtc::trailer::read(&p), Some(9));
    }
}
