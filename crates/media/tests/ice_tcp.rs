//! ICE-TCP through the real driver: a client that can only use TCP (as behind a firewall that
//! blocks UDP) connects to the relay's TCP port with RFC 4571 framing and completes ICE and
//! DTLS. The client is str0m too, but the sockets, framing and routing are the driver's own.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use prometheus::Registry;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use townhall_core::MeetingId;
use townhall_media::{Media, MediaConfig, MediaMetrics};

#[tokio::test]
async fn a_viewer_that_cannot_use_udp_connects_over_ice_tcp() {
    let config = MediaConfig {
        bind_ip: Ipv4Addr::LOCALHOST.into(),
        udp_port: 0,
        tcp_port: 0,
        ..MediaConfig::default()
    };
    let metrics = MediaMetrics::new(&Registry::new()).unwrap();
    let media = Media::start(&config, metrics.clone()).unwrap();
    let relay_tcp = media.tcp_addrs()[0];

    let mut stream = TcpStream::connect(relay_tcp).await.unwrap();
    let local = stream.local_addr().unwrap();
    let mut rtc = Rtc::builder().set_rtp_mode(true).build(Instant::now());
    let candidate = Candidate::builder()
        .tcp()
        .host(local)
        .tcptype(TcpType::Active)
        .build()
        .unwrap();
    rtc.add_local_candidate(candidate);
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change.apply().unwrap();

    let meeting = MeetingId::parse("tcp-test").unwrap();
    let answer = media
        .view(Ipv4Addr::LOCALHOST.into(), meeting, offer.to_sdp_string())
        .await
        .unwrap();
    assert!(
        answer.sdp.contains(" tcp "),
        "the answer offers an ICE-TCP candidate"
    );
    rtc.sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer.sdp).unwrap())
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "ICE-TCP never connected");
        let wake = match rtc.poll_output().unwrap() {
            Output::Event(Event::Connected) => break,
            Output::Event(_) => continue,
            Output::Transmit(t) => {
                assert_eq!(
                    t.proto,
                    Protocol::Tcp,
                    "a TCP-only client sends only over TCP"
                );
                let mut frame = (t.contents.len() as u16).to_be_bytes().to_vec();
                frame.extend_from_slice(&t.contents);
                stream.write_all(&frame).await.unwrap();
                continue;
            }
            Output::Timeout(t) => t,
        };
        let wait = wake
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        if let Ok(read) = tokio::time::timeout(wait, stream.read(&mut chunk)).await {
            let n = read.unwrap();
            assert!(n > 0, "the relay closed the TCP connection");
            buf.extend_from_slice(&chunk[..n]);
        }
        // Every complete RFC 4571 frame is one datagram for the client.
        while buf.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
            if buf.len() < 2 + len {
                break;
            }
            let datagram: Vec<u8> = buf.drain(..2 + len).skip(2).collect();
            let receive = Receive::new(Protocol::Tcp, relay_tcp, local, &datagram).unwrap();
            rtc.handle_input(Input::Receive(Instant::now(), receive))
                .unwrap();
        }
        rtc.handle_input(Input::Timeout(Instant::now())).unwrap();
    }
    assert_eq!(metrics.peers.with_label_values(&["viewer"]).get(), 1);
}

/// Issue 8 row 10: idle ICE-TCP connections stayed open forever, a file descriptor each. Now
/// one address holds at most `ice_tcp_max_per_ip` of them (more are closed at accept), and a
/// connection without a frame for `ice_tcp_idle_secs` is closed.
#[tokio::test]
async fn idle_ice_tcp_connections_are_bounded_per_address_and_in_time() {
    let config = MediaConfig {
        bind_ip: Ipv4Addr::LOCALHOST.into(),
        udp_port: 0,
        tcp_port: 0,
        ice_tcp_max_per_ip: 3,
        ice_tcp_idle_secs: 1,
        ..MediaConfig::default()
    };
    let metrics = MediaMetrics::new(&Registry::new()).unwrap();
    let media = Media::start(&config, metrics.clone()).unwrap();
    let relay_tcp = media.tcp_addrs()[0];
    let started = Instant::now();
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(TcpStream::connect(relay_tcp).await.unwrap());
    }
    // Each connection is closed by the relay: the two over the cap at once, the others when
    // idle. A read of 0 bytes (or a reset) is the close.
    let mut closed_after = Vec::new();
    for mut s in open {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the connection stays open: {read:?}"
        );
        closed_after.push(started.elapsed());
    }
    assert!(
        closed_after.iter().all(|t| *t < Duration::from_secs(5)),
        "{closed_after:?}"
    );
    assert_eq!(
        metrics
            .dropped_datagrams
            .with_label_values(&["tcp_per_ip"])
            .get(),
        2
    );
    // The slots are free again: a new connection is accepted (and only idles out later).
    let mut again = TcpStream::connect(relay_tcp).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), again.read(&mut byte)).await;
    assert!(early.is_err(), "accepted and held until idle: {early:?}");
}
