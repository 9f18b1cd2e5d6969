//! Reading the negotiated m-lines back from our own SDP answer.
//!
//! str0m announces m-lines with events only once the peer is connected, but the relay must
//! know at once which m-line is which (video slot k is the k-th video m-line) and refuse an
//! offer with nothing usable while the HTTP request is still open.

/// One m-line of an answer, from our side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerLine {
    pub video: bool,
    pub mid: String,
    pub sends: bool,
    pub receives: bool,
}

/// The audio and video m-lines of `answer` in order; rejected ones (port 0) are left out.
pub fn answer_lines(answer: &str) -> Vec<AnswerLine> {
    let mut out = Vec::new();
    let mut current: Option<(AnswerLine, bool)> = None;
    let finish = |line: Option<(AnswerLine, bool)>, out: &mut Vec<AnswerLine>| {
        if let Some((l, rejected)) = line
            && !rejected
            && !l.mid.is_empty()
        {
            out.push(l);
        }
    };
    for line in answer.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            finish(current.take(), &mut out);
            let mut parts = m.split_whitespace();
            let kind = parts.next().unwrap_or("");
            let rejected = parts.next() == Some("0");
            if kind == "video" || kind == "audio" {
                let l = AnswerLine {
                    video: kind == "video",
                    mid: String::new(),
                    sends: true,
                    receives: true,
                };
                current = Some((l, rejected));
            }
        } else if let Some((l, _)) = current.as_mut() {
            match line {
                "a=sendonly" => (l.sends, l.receives) = (true, false),
                "a=recvonly" => (l.sends, l.receives) = (false, true),
                "a=inactive" => (l.sends, l.receives) = (false, false),
                _ => {
                    if let Some(mid) = line.strip_prefix("a=mid:") {
                        l.mid = mid.to_owned();
                    }
                }
            }
        }
    }
    finish(current.take(), &mut out);
    out
}

/// The rids an offer sends (`a=rid:<id> send`), in order.
pub fn offered_rids(offer: &str) -> Vec<String> {
    offer
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=rid:"))
        .filter_map(|rest| {
            let mut parts = rest.split_whitespace();
            let id = parts.next()?;
            (parts.next() == Some("send")).then(|| id.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn offered_rids_are_the_send_ones() {
        let offer = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rid:q send\r\na=rid:h send max-width=640\r\n\
            a=rid:x recv\r\na=simulcast:send q;h\r\n";
        assert_eq!(offered_rids(offer), vec!["q", "h"]);
        assert!(offered_rids("v=0\r\n").is_empty());
    }

    use super::*;

    #[test]
    fn reads_kinds_mids_and_directions_in_order() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=recvonly\r\n\
            m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=inactive\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:4\r\n";
        let lines = answer_lines(sdp);
        let summary: Vec<_> = lines
            .iter()
            .map(|l| (l.video, l.mid.as_str(), l.sends, l.receives))
            .collect();
        assert_eq!(
            summary,
            vec![
                (true, "0", true, false),
                (false, "1", false, true),
                (false, "4", true, true)
            ]
        );
    }

    #[test]
    fn garbage_gives_nothing() {
        assert!(answer_lines("").is_empty());
        assert!(answer_lines("m=\r\na=mid:").is_empty());
    }
}
