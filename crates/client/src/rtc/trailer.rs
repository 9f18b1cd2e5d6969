//! A numbered trailer at the end of each synthetic payload.
//!
//! A relay may rewrite sequence numbers and timestamps, but it must not touch payloads; so the
//! publisher numbers every packet of a track in its last bytes and a viewer can say exactly
//! which of the publisher's packets it received.

use bytes::{BufMut, BytesMut};

/// Magic (4 bytes) + packet index (8 bytes).
pub const LEN: usize = 12;
const MAGIC: [u8; 4] = *b"THL1";

pub fn put(buf: &mut BytesMut, index: u64) {
    buf.put_slice(&MAGIC);
    buf.put_u64(index);
}

/// The packet index, if the payload ends with a trailer.
pub fn read(payload: &[u8]) -> Option<u64> {
    let at = payload.len().checked_sub(LEN)?;
    let (magic, index) = payload[at..].split_at(4);
    (magic == MAGIC).then(|| u64::from_be_bytes(index.try_into().unwrap()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_foreign_payloads() {
        let mut b = BytesMut::from(&b"payload"[..]);
        put(&mut b, 77);
        assert_eq!(read(&b), Some(77));
        assert_eq!(read(b"payload-without-trailer"), None);
        assert_eq!(read(b"short"), None);
    }
}
