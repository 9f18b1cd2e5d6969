//! The relay on virtual time: str0m clients (a publisher and viewers) talk to the `Relay` state
//! machine through an in-memory network, a millisecond at a time. No sockets and no sleeping,
//! so the tests are exact and fast, and they can count every packet.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use prometheus::Registry;
use std::sync::Arc;
use str0m::bwe::Bitrate;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};
use townhall_core::MeetingId;
use townhall_media::keyframe::starts_keyframe;
use townhall_media::relay::HOUSEKEEPING;
use townhall_media::relay::{Relay, RelayConfig, Shared};
use townhall_media::{MediaError, MediaMetrics, Route, SessionId, SourceKind};

const RELAY_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 50000);
const STEP: Duration = Duration::from_millis(1);
const CLIENT_IP: std::net::IpAddr = std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

struct Client {
    rtc: Rtc,
    addr: SocketAddr,
    /// Unplugged clients get nothing and send nothing, like a laptop whose lid closed.
    plugged: bool,
    video_mid: Option<Mid>,
    audio_mid: Option<Mid>,
    received_video: u64,
    received_audio: u64,
    keyframe_requests: u64,
    connected: bool,
    /// Payload size and sequence number of every video packet received, in order.
    video_sizes: Vec<usize>,
    video_seqs: Vec<u64>,
    /// When the client was made, and when its first video packet came, and whether that one
    /// started a keyframe.
    made: Instant,
    first_video: Option<(Instant, bool)>,
}

struct Net {
    /// Shard 0 (the meeting's publishers are here) and the node's other shards.
    relay: Relay,
    others: Vec<Relay>,
    metrics: MediaMetrics,
    clients: Vec<Client>,
    now: Instant,
    start: Instant,
    meeting: MeetingId,
    /// Publisher state: next sequence numbers, frame counter, what was sent.
    video_seq: u64,
    audio_seq: u64,
    frame: u64,
    sent_video: u64,
    sent_audio: u64,
    key_wanted: bool,
    /// The publisher sends three simulcast layers of one packet per frame each (`LAYERS`).
    simulcast: bool,
    layer_seqs: [u64; 3],
}

/// Simulcast layers the test publisher sends: rid and packet size (one packet per frame).
const LAYERS: [(&str, usize); 3] = [("q", 300), ("h", 600), ("f", 1000)];

/// Shard `shard` of `shards`, on port 50000 + shard.
fn shard_config(shard: u16, shards: u16, shared: Arc<Shared>) -> RelayConfig {
    let addr = SocketAddr::new(RELAY_ADDR.ip(), RELAY_ADDR.port() + shard);
    RelayConfig {
        shard,
        shards,
        shared,
        candidates: vec![Candidate::host(addr, "udp").unwrap()],
        max_viewers: 1000,
        keyframe_interval: Duration::from_millis(500),
        initial_viewer_bitrate: Bitrate::kbps(1000),
        idle_source: Duration::from_secs(2),
        max_sessions_per_ip: 60,
        connect_timeout: Duration::from_secs(20),
        max_candidates: 50,
        trickle_per_second: 5.0,
        trickle_burst: 30,
    }
}

impl Net {
    fn new() -> Self {
        Self::sharded(1)
    }

    /// A node of `shards` relay shards sharing their limits, as the driver runs them.
    fn sharded(shards: u16) -> Self {
        let now = Instant::now();
        let metrics = MediaMetrics::new(&Registry::new()).unwrap();
        let shared = Arc::new(Shared::default());
        let mut relays: Vec<Relay> = (0..shards)
            .map(|i| {
                Relay::new(
                    shard_config(i, shards, shared.clone()),
                    metrics.clone(),
                    now,
                )
            })
            .collect();
        let relay = relays.remove(0);
        Net {
            relay,
            others: relays,
            metrics,
            clients: Vec::new(),
            now,
            start: now,
            meeting: MeetingId::parse("virtual").unwrap(),
            video_seq: 1,
            audio_seq: 1,
            frame: 0,
            sent_video: 0,
            sent_audio: 0,
            key_wanted: false,
            simulcast: false,
            layer_seqs: [1; 3],
        }
    }

    fn client(&mut self, direction: Direction) -> (usize, SdpPendingOffer, String) {
        self.client_with(direction, None)
    }

    fn client_with(
        &mut self,
        direction: Direction,
        simulcast: Option<Simulcast>,
    ) -> (usize, SdpPendingOffer, String) {
        let index = self.clients.len();
        let addr = SocketAddr::from(([10, 0, 1, index as u8 + 1], 40000));
        let mut rtc = Rtc::builder().set_rtp_mode(true).build(self.now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let video_mid = change.add_media(MediaKind::Video, direction, None, None, simulcast);
        let audio_mid = change.add_media(MediaKind::Audio, direction, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        self.clients.push(Client {
            rtc,
            addr,
            plugged: true,
            video_mid: Some(video_mid),
            audio_mid: Some(audio_mid),
            received_video: 0,
            received_audio: 0,
            keyframe_requests: 0,
            connected: false,
            video_sizes: Vec::new(),
            video_seqs: Vec::new(),
            made: self.now,
            first_video: None,
        });
        (index, pending, offer.to_sdp_string())
    }

    fn accept(&mut self, index: usize, pending: SdpPendingOffer, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).unwrap();
        self.clients[index]
            .rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .unwrap();
    }

    fn publisher(&mut self) -> usize {
        let simulcast = self.simulcast.then(|| Simulcast {
            send: LAYERS
                .iter()
                .map(|(rid, _)| SimulcastLayer::new(rid))
                .collect(),
            recv: Vec::new(),
        });
        let (index, pending, offer) = self.client_with(Direction::SendOnly, simulcast);
        let answer = self
            .relay
            .publish(
                self.now,
                CLIENT_IP,
                self.meeting.clone(),
                SourceKind::Camera,
                None,
                &offer,
            )
            .unwrap();
        self.accept(index, pending, &answer.sdp);
        index
    }

    fn viewer(&mut self) -> usize {
        self.viewer_on(0)
    }

    /// A viewer on shard `shard`; returns its index and session.
    fn viewer_on(&mut self, shard: usize) -> usize {
        self.viewer_session(shard).0
    }

    fn viewer_session(&mut self, shard: usize) -> (usize, SessionId) {
        let (index, pending, offer) = self.client(Direction::RecvOnly);
        let (now, meeting) = (self.now, self.meeting.clone());
        let answer = self
            .shard(shard)
            .view(now, CLIENT_IP, meeting, &offer)
            .unwrap();
        self.accept(index, pending, &answer.sdp);
        (index, answer.session)
    }

    fn shard(&mut self, shard: usize) -> &mut Relay {
        match shard {
            0 => &mut self.relay,
            n => &mut self.others[n - 1],
        }
    }

    fn relays(&mut self) -> impl Iterator<Item = &mut Relay> {
        std::iter::once(&mut self.relay).chain(self.others.iter_mut())
    }

    /// The relay shard listening on `addr`.
    fn relay_at(&mut self, addr: SocketAddr) -> &mut Relay {
        let shard = usize::from(addr.port() - RELAY_ADDR.port());
        self.shard(shard)
    }

    /// Moves the shards' messages to each other, as the driver's channels do.
    fn exchange(&mut self) -> bool {
        let mut messages = Vec::new();
        for (i, relay) in self.relays().enumerate() {
            messages.extend(relay.drain_exports().map(|m| (i, m)));
        }
        let now = self.now;
        for (from, m) in &messages {
            for (j, relay) in self.relays().enumerate() {
                if j != *from && m.target().is_none_or(|t| usize::from(t) == j) {
                    relay.ingest(now, m);
                }
            }
        }
        !messages.is_empty()
    }

    /// Moves every queued datagram until the network is quiet. Like the real driver, each
    /// input to an `Rtc` is followed by polling it dry (str0m expects exactly that).
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..self.clients.len() {
                if self.clients[i].plugged {
                    moved |= self.poll_client(i);
                }
            }
            moved |= self.exchange();
            let mut outgoing = Vec::new();
            for relay in self.relays() {
                outgoing.extend(relay.drain_outgoing());
            }
            for out in outgoing {
                moved = true;
                let Some(i) = self.clients.iter().position(|c| c.addr == out.destination) else {
                    continue;
                };
                if !self.clients[i].plugged {
                    continue;
                }
                let receive =
                    Receive::new(Protocol::Udp, out.source, out.destination, &out.data).unwrap();
                self.clients[i]
                    .rtc
                    .handle_input(Input::Receive(self.now, receive))
                    .unwrap();
                self.poll_client(i);
            }
            if !moved {
                return;
            }
        }
        panic!("the network never went quiet");
    }

    /// Polls client `i` until it waits for time; its datagrams go straight to the relay.
    fn poll_client(&mut self, i: usize) -> bool {
        let mut moved = false;
        loop {
            let client = &mut self.clients[i];
            match client.rtc.poll_output().unwrap() {
                Output::Timeout(_) => return moved,
                Output::Transmit(t) => {
                    moved = true;
                    let now = self.now;
                    self.relay_at(t.destination).receive(
                        now,
                        t.proto,
                        t.source,
                        t.destination,
                        &t.contents,
                    );
                }
                Output::Event(e) => match e {
                    Event::Connected => client.connected = true,
                    Event::RtpPacket(p) => {
                        let mid = client
                            .rtc
                            .direct_api()
                            .stream_rx(&p.header.ssrc)
                            .map(|s| s.mid());
                        if mid == client.video_mid {
                            if client.first_video.is_none() {
                                let key = starts_keyframe(Codec::Vp8, &p.payload);
                                client.first_video = Some((self.now, key));
                            }
                            client.received_video += 1;
                            client.video_sizes.push(p.payload.len());
                            client.video_seqs.push(*p.seq_no);
                        } else if mid == client.audio_mid {
                            client.received_audio += 1;
                        }
                    }
                    Event::KeyframeRequest(_) => {
                        client.keyframe_requests += 1;
                        self.key_wanted = true;
                    }
                    _ => {}
                },
            }
        }
    }

    /// Advances virtual time by `duration`, with the publisher (client 0) sending 30 video
    /// frames of 3 packets and 50 audio packets a second once connected.
    fn run(&mut self, duration: Duration, publishing: bool) {
        let end = self.now + duration;
        while self.now < end {
            self.now += STEP;
            for c in self.clients.iter_mut().filter(|c| c.plugged) {
                c.rtc.handle_input(Input::Timeout(self.now)).unwrap();
            }
            let now = self.now;
            for relay in self.relays() {
                relay.handle_timeout(now);
            }
            let ms = self.ms();
            if publishing && self.clients[0].connected {
                if ms.is_multiple_of(20) {
                    self.send_audio();
                }
                if ms.is_multiple_of(33) {
                    self.send_frame();
                }
            }
            self.settle();
        }
    }

    fn ms(&self) -> u64 {
        self.now.duration_since(self.start).as_millis() as u64
    }

    fn pt(&self, codec: Codec) -> Pt {
        self.clients[0]
            .rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec)
            .unwrap()
            .pt()
    }

    fn send_frame(&mut self) {
        let pt = self.pt(Codec::Vp8);
        let key = self.frame.is_multiple_of(60) || std::mem::take(&mut self.key_wanted);
        let picture_id = (self.frame & 0x7fff) as u16;
        let ts = (self.frame * 3000) as u32;
        let now = self.now;
        let mid = self.clients[0].video_mid.unwrap();
        let mut api = self.clients[0].rtc.direct_api();
        if self.simulcast {
            for (i, (rid, size)) in LAYERS.iter().enumerate() {
                let stream = api.stream_tx_by_mid(mid, Some((*rid).into())).unwrap();
                let payload = vp8_payload(picture_id, true, key, *size);
                let seq = self.layer_seqs[i];
                stream.write_rtp(
                    RtpWrite::new(pt, seq.into(), ts, now, payload)
                        .marker(true)
                        .nackable(true),
                );
                self.layer_seqs[i] += 1;
            }
            self.sent_video += 1;
            self.frame += 1;
            return;
        }
        let stream = api.stream_tx_by_mid(mid, None).unwrap();
        for part in 0..3 {
            let payload = vp8_payload(picture_id, part == 0, key, 1000);
            stream.write_rtp(
                RtpWrite::new(pt, self.video_seq.into(), ts, now, payload)
                    .marker(part == 2)
                    .nackable(true),
            );
            self.video_seq += 1;
            self.sent_video += 1;
        }
        self.frame += 1;
    }

    fn send_audio(&mut self) {
        let pt = self.pt(Codec::Opus);
        let ts = (self.audio_seq * 960) as u32;
        let now = self.now;
        let mid = self.clients[0].audio_mid.unwrap();
        let mut api = self.clients[0].rtc.direct_api();
        let stream = api.stream_tx_by_mid(mid, None).unwrap();
        stream.write_rtp(RtpWrite::new(
            pt,
            self.audio_seq.into(),
            ts,
            now,
            vec![0xfc; 80],
        ));
        self.audio_seq += 1;
        self.sent_audio += 1;
    }
}

/// A VP8 payload: descriptor with a 15-bit picture id, then (first packet) the payload header.
fn vp8_payload(picture_id: u16, first: bool, key: bool, len: usize) -> Vec<u8> {
    let start = if first { 0x10 } else { 0x00 };
    let mut p = vec![
        0x80 | start,
        0x80,
        0x80 | (picture_id >> 8) as u8,
        picture_id as u8,
    ];
    p.push(if key { 0x00 } else { 0x01 });
    p.resize(len, 0x42);
    p
}

/// A publisher and `viewers` viewers, connected and past the first keyframe.
fn stage(viewers: usize) -> Net {
    let mut net = Net::new();
    net.publisher();
    for _ in 0..viewers {
        net.viewer();
    }
    net.run(Duration::from_secs(3), true);
    assert!(
        net.clients.iter().all(|c| c.connected),
        "every client connects"
    );
    net
}

#[test]
fn every_viewer_gets_every_packet_the_publisher_sent() {
    let mut net = stage(3);
    // A quiet moment first, so nothing is in flight when counting starts.
    net.run(Duration::from_millis(300), false);
    let (video0, audio0) = (net.sent_video, net.sent_audio);
    let before: Vec<(u64, u64)> = net.clients[1..]
        .iter()
        .map(|c| (c.received_video, c.received_audio))
        .collect();
    net.run(Duration::from_secs(2), true);
    // One more quiet second lets the paced tail arrive.
    net.run(Duration::from_secs(1), false);
    let (sent_video, sent_audio) = (net.sent_video - video0, net.sent_audio - audio0);
    assert!(
        sent_video > 150 && sent_audio > 90,
        "the publisher sent {sent_video}/{sent_audio}"
    );
    for (c, (v0, a0)) in net.clients[1..].iter().zip(before) {
        assert_eq!(
            c.received_video - v0,
            sent_video,
            "video packets per viewer"
        );
        assert_eq!(
            c.received_audio - a0,
            sent_audio,
            "audio packets per viewer"
        );
    }
    assert!(net.metrics.forwarded_packets.get() >= 3 * (sent_video + sent_audio));
    net.run(Duration::from_millis(1500), false);
    let stage = net.relay.stage(net.now, &net.meeting);
    assert!(
        stage.is_empty(),
        "a source that stopped sending leaves the stage: {stage:?}"
    );
}

#[test]
fn the_stage_lists_a_flowing_source() {
    let mut net = stage(1);
    let stage = net.relay.stage(net.now, &net.meeting);
    assert_eq!(stage.len(), 1);
    assert_eq!(
        (stage[0].slot, stage[0].video, stage[0].audio),
        (0, true, true)
    );
    assert_eq!(stage[0].source, SourceKind::Camera);
}

#[test]
fn a_viewer_that_vanishes_does_not_disturb_the_others_and_is_removed() {
    let mut net = stage(3);
    net.run(Duration::from_millis(300), false);
    net.clients[2].plugged = false;
    let before: Vec<u64> = net.clients.iter().map(|c| c.received_video).collect();
    let sent0 = net.sent_video;
    net.run(Duration::from_secs(2), true);
    net.run(Duration::from_millis(500), false);
    let sent = net.sent_video - sent0;
    assert_eq!(net.clients[1].received_video - before[1], sent);
    assert_eq!(net.clients[3].received_video - before[3], sent);
    assert_eq!(net.clients[2].received_video, before[2]);
    // ICE notices the silence and the relay lets the peer go.
    for _ in 0..60 {
        if net.relay.peer_counts() == (1, 2) {
            return;
        }
        net.run(Duration::from_secs(1), true);
    }
    panic!(
        "the vanished viewer was never removed: {:?}",
        net.relay.peer_counts()
    );
}

#[test]
fn many_joins_at_once_cost_the_publisher_few_keyframe_requests() {
    let mut net = stage(0);
    let requests0 = net.clients[0].keyframe_requests;
    for _ in 0..40 {
        net.viewer();
        net.run(Duration::from_millis(5), true);
    }
    net.run(Duration::from_secs(2), true);
    let requests = net.clients[0].keyframe_requests - requests0;
    assert!(
        net.clients[1..].iter().all(|c| c.received_video > 0),
        "every viewer got video"
    );
    // They start from the relay's keyframe cache; never more than one request per 500 ms.
    assert!(
        requests <= 5,
        "{requests} keyframe requests reached the publisher"
    );
}

#[test]
fn ending_the_meeting_closes_every_session() {
    let mut net = stage(2);
    assert_eq!(net.relay.peer_counts(), (1, 2));
    let meeting = net.meeting.clone();
    net.relay.end_meeting(&meeting);
    assert_eq!(net.relay.peer_counts(), (0, 0));
    assert!(net.relay.stage(net.now, &meeting).is_empty());
}

#[test]
fn bad_offers_are_refused_and_leave_no_peer() {
    let mut net = Net::new();
    let meeting = net.meeting.clone();
    let garbage = net.relay.publish(
        net.now,
        CLIENT_IP,
        meeting.clone(),
        SourceKind::Camera,
        None,
        "hello",
    );
    assert!(matches!(garbage, Err(MediaError::BadSdp(_))), "{garbage:?}");
    // A WHEP-style (receive-only) offer sent to WHIP has nothing to publish.
    let (_, _, recv_offer) = net.client(Direction::RecvOnly);
    let wrong = net.relay.publish(
        net.now,
        CLIENT_IP,
        meeting.clone(),
        SourceKind::Camera,
        None,
        &recv_offer,
    );
    assert!(matches!(wrong, Err(MediaError::BadSdp(_))), "{wrong:?}");
    let (_, _, send_offer) = net.client(Direction::SendOnly);
    let wrong = net.relay.view(net.now, CLIENT_IP, meeting, &send_offer);
    assert!(matches!(wrong, Err(MediaError::BadSdp(_))), "{wrong:?}");
    // Simulcast layers must be named q, h and f: others could not be told apart.
    let layers = Simulcast {
        send: vec![SimulcastLayer::new("lo"), SimulcastLayer::new("hi")],
        recv: Vec::new(),
    };
    let (_, _, odd_rids) = net.client_with(Direction::SendOnly, Some(layers));
    let wrong = net.relay.publish(
        net.now,
        CLIENT_IP,
        net.meeting.clone(),
        SourceKind::Camera,
        None,
        &odd_rids,
    );
    assert!(
        matches!(&wrong, Err(MediaError::BadSdp(why)) if why.contains("\"lo\"")),
        "{wrong:?}"
    );
    assert_eq!(net.relay.peer_counts(), (0, 0));
}

#[test]
fn the_stage_has_four_slots() {
    let mut net = Net::new();
    for _ in 0..4 {
        net.publisher();
    }
    let (_, _, offer) = net.client(Direction::SendOnly);
    let full = net.relay.publish(
        net.now,
        CLIENT_IP,
        net.meeting.clone(),
        SourceKind::Screen,
        None,
        &offer,
    );
    assert_eq!(full.unwrap_err(), MediaError::StageFull);
}

#[test]
fn an_offer_nobody_follows_up_is_dropped_after_the_connect_timeout() {
    let mut net = Net::new();
    let (index, _, offer) = net.client(Direction::RecvOnly);
    net.clients[index].plugged = false;
    net.relay
        .view(net.now, CLIENT_IP, net.meeting.clone(), &offer)
        .unwrap();
    assert_eq!(net.relay.peer_counts(), (0, 1));
    // str0m's ICE may give up first; the relay's connect timeout is the backstop.
    net.run(Duration::from_secs(22), false);
    assert_eq!(net.relay.peer_counts(), (0, 0));
}

#[test]
fn one_address_holds_a_bounded_number_of_sessions() {
    let mut net = Net::new();
    for _ in 0..60 {
        let (_, _, offer) = net.client(Direction::RecvOnly);
        net.relay
            .view(net.now, CLIENT_IP, net.meeting.clone(), &offer)
            .unwrap();
    }
    let (_, _, offer) = net.client(Direction::RecvOnly);
    let refused = net
        .relay
        .view(net.now, CLIENT_IP, net.meeting.clone(), &offer);
    assert_eq!(refused.unwrap_err(), MediaError::TooManySessions);
    let other = std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8));
    assert!(
        net.relay
            .view(net.now, other, net.meeting.clone(), &offer)
            .is_ok()
    );
}

#[test]
fn simulcast_viewers_get_the_layer_that_fits_or_the_one_chosen_without_a_gap() {
    let mut net = Net::new();
    net.simulcast = true;
    net.publisher();
    let (index, pending, offer) = net.client(Direction::RecvOnly);
    let answer = net
        .relay
        .view(net.now, CLIENT_IP, net.meeting.clone(), &offer)
        .unwrap();
    net.accept(index, pending, &answer.sdp);
    let meeting = net.meeting.clone();
    net.run(Duration::from_secs(3), true);
    let viewer = &net.clients[index];
    // 1 Mbit/s assumed at first: the full layer (≈240 kbit/s here) fits.
    assert_eq!(
        viewer.video_sizes.last(),
        Some(&1000),
        "automatic choice is the top layer"
    );

    net.relay
        .set_layer(&meeting, &answer.session, Some("q"))
        .unwrap();
    net.run(Duration::from_secs(2), true);
    assert_eq!(
        net.clients[index].video_sizes.last(),
        Some(&300),
        "manual choice: quarter"
    );

    net.relay
        .set_layer(&meeting, &answer.session, None)
        .unwrap();
    net.run(Duration::from_secs(2), true);
    let viewer = &net.clients[index];
    assert_eq!(viewer.video_sizes.last(), Some(&1000), "back to automatic");
    // Switching layers never shows the viewer a gap or a repeat in sequence numbers.
    assert!(
        viewer.video_seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "{:?}",
        viewer.video_seqs
    );
    assert!(net.metrics.layer_switches.get() >= 2);
    assert!(matches!(
        net.relay.set_layer(&meeting, &answer.session, Some("x")),
        Err(MediaError::BadRequest(_))
    ));
}

#[test]
fn new_links_close_the_publishers_but_keep_the_viewers() {
    let mut net = stage(2);
    let meeting = net.meeting.clone();
    net.relay.close_publishers(&meeting);
    assert_eq!(net.relay.peer_counts(), (0, 2));
}

#[test]
fn nothing_is_queued_for_a_viewer_that_has_not_connected() {
    let mut net = stage(0);
    let (index, _, offer) = net.client(Direction::RecvOnly);
    net.clients[index].plugged = false;
    net.relay
        .view(net.now, CLIENT_IP, net.meeting.clone(), &offer)
        .unwrap();
    net.run(Duration::from_secs(2), true);
    assert!(net.sent_video > 100);
    assert_eq!(net.metrics.forwarded_packets.get(), 0);
}

/// A trickle fragment of `n` host candidates, ports from `first_port` on.
fn candidates(first_port: u16, n: u16) -> String {
    (0..n)
        .map(|i| {
            format!(
                "a=candidate:{i} 1 udp 2130706431 192.0.2.7 {} typ host\r\n",
                first_port + i
            )
        })
        .collect()
}

/// Issue 8 row 8: 36,000 trickled candidates made every request slow. Now a session takes at
/// most 50 candidates and 30 PATCHes at once (then 5 a second), with stable codes; another
/// session is unaffected.
#[test]
fn trickled_candidates_and_trickle_requests_are_bounded_per_session() {
    let mut net = Net::new();
    let meeting = net.meeting.clone();
    let (_, _, offer) = net.client(Direction::RecvOnly);
    let greedy = net
        .relay
        .view(net.now, CLIENT_IP, meeting.clone(), &offer)
        .unwrap()
        .session;
    let (_, _, offer) = net.client(Direction::RecvOnly);
    let honest = net
        .relay
        .view(net.now, CLIENT_IP, meeting.clone(), &offer)
        .unwrap()
        .session;
    let now = net.now;
    for i in 0..30 {
        net.relay
            .trickle(
                now,
                Route::Whep,
                &meeting,
                &greedy,
                &candidates(41000 + i, 1),
            )
            .unwrap();
    }
    let refused = net
        .relay
        .trickle(now, Route::Whep, &meeting, &greedy, &candidates(42000, 1));
    assert_eq!(refused, Err(MediaError::RateLimited));
    assert_eq!(refused.unwrap_err().code(), "rate_limited");
    // The bucket refills at 5 a second; the other session never noticed.
    net.relay
        .trickle(now, Route::Whep, &meeting, &honest, &candidates(43000, 5))
        .unwrap();
    let later = now + Duration::from_secs(1);
    net.relay
        .trickle(
            later,
            Route::Whep,
            &meeting,
            &greedy,
            &candidates(44000, 20),
        )
        .unwrap();
    // 50 candidates taken: one more is refused, however it is sent.
    let over = net
        .relay
        .trickle(later, Route::Whep, &meeting, &greedy, &candidates(45000, 1))
        .unwrap_err();
    assert_eq!(over, MediaError::TooManyCandidates(50));
    assert_eq!(over.code(), "too_many_candidates");
    let bulk = net.relay.trickle(
        later,
        Route::Whep,
        &meeting,
        &honest,
        &candidates(46000, 46),
    );
    assert_eq!(bulk, Err(MediaError::TooManyCandidates(50)));
    net.relay
        .trickle(
            later,
            Route::Whep,
            &meeting,
            &honest,
            &candidates(47000, 45),
        )
        .unwrap();
}

/// Issue 8 row 9: offers never followed by a connection lived on an idle relay because
/// nothing woke it. Driven only by its own `next_timeout`, the relay wakes at least once a
/// second and drops them after the connect timeout, freeing their per-address slots.
#[test]
fn an_idle_relay_wakes_by_itself_and_drops_offers_nobody_followed_up() {
    let mut net = Net::new();
    for _ in 0..3 {
        let (_, _, offer) = net.client(Direction::RecvOnly);
        net.relay
            .view(net.now, CLIENT_IP, net.meeting.clone(), &offer)
            .unwrap();
    }
    assert_eq!(net.relay.peer_counts(), (0, 3));
    let start = net.now;
    let mut now = net.now;
    while now < start + Duration::from_secs(22) && net.relay.peer_counts() != (0, 0) {
        let at = net
            .relay
            .next_timeout()
            .expect("a relay with peers always has a wake-up time");
        assert!(at <= now + HOUSEKEEPING, "the relay sleeps {:?}", at - now);
        now = at.max(now);
        net.relay.handle_timeout(now);
        net.relay.drain_outgoing().for_each(drop);
        now += Duration::from_millis(1);
    }
    assert_eq!(net.relay.peer_counts(), (0, 0));
    assert_eq!(net.relay.next_timeout(), None, "nothing left to wake for");
}

/// Issue 8 row 11: a session id works only under its own meeting and route.
#[test]
fn a_session_works_only_under_its_own_meeting_and_route() {
    let mut net = stage(1);
    let meeting = net.meeting.clone();
    let other = MeetingId::parse("another").unwrap();
    let (_, _, offer) = net.client(Direction::RecvOnly);
    let viewer = net
        .relay
        .view(net.now, CLIENT_IP, meeting.clone(), &offer)
        .unwrap()
        .session;
    let now = net.now;
    let frag = candidates(48000, 1);
    let no = Err(MediaError::NoSession);
    assert_eq!(net.relay.close(Route::Whep, &other, &viewer), no);
    assert_eq!(net.relay.close(Route::Whip, &meeting, &viewer), no);
    assert_eq!(
        net.relay.trickle(now, Route::Whep, &other, &viewer, &frag),
        no
    );
    assert_eq!(
        net.relay
            .trickle(now, Route::Whip, &meeting, &viewer, &frag),
        no
    );
    assert_eq!(net.relay.set_layer(&other, &viewer, None), no);
    assert_eq!(net.relay.peer_counts(), (1, 2), "nothing was closed");
    // Its own route still works, and a second DELETE there is still 200, elsewhere 404.
    net.relay.close(Route::Whep, &meeting, &viewer).unwrap();
    net.relay.close(Route::Whep, &meeting, &viewer).unwrap();
    assert_eq!(net.relay.close(Route::Whep, &other, &viewer), no);
    assert_eq!(net.relay.close(Route::Whip, &meeting, &viewer), no);
    let unknown = SessionId::random();
    assert_eq!(net.relay.close(Route::Whep, &meeting, &unknown), no);
    assert_eq!(net.relay.peer_counts(), (1, 1));
}

/// Issue 11 part 3: a viewer who joins mid-stream starts from the keyframe the relay keeps
/// (and every packet after it, in order), without asking the publisher for one; twenty who join
/// at once cost the publisher nothing either, and each gets its whole catch-up.
#[test]
fn new_viewers_start_from_the_cached_keyframe_without_asking_the_publisher() {
    let mut net = stage(1);
    // Keyframes come every 60 frames (2 s): join ≈ 1.5 s after the last one.
    net.run(Duration::from_millis(500), true);
    let requests0 = net.clients[0].keyframe_requests;
    let sent0 = net.sent_video;
    let joined: Vec<usize> = (0..20).map(|_| net.viewer()).collect();
    net.run(Duration::from_secs(1), true);
    net.run(Duration::from_millis(500), false);
    assert_eq!(
        net.clients[0].keyframe_requests, requests0,
        "no keyframe request reached the publisher"
    );
    let sent_since_join = net.sent_video - sent0;
    let caught_up = net.clients[joined[0]].received_video;
    for &i in &joined {
        let c = &net.clients[i];
        let (at, key) = c.first_video.expect("video arrives");
        assert!(key, "viewer {i} starts at a keyframe");
        assert!(
            at - c.made < Duration::from_millis(400),
            "viewer {i} waited {:?} for its first frame",
            at - c.made
        );
        assert!(
            c.video_seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "viewer {i}: a gap or repeat in {:?}",
            c.video_seqs
        );
        // Everything from the cached keyframe on: more than was sent since joining, and
        // the same for all.
        assert_eq!(c.received_video, caught_up, "viewer {i}");
        assert!(
            caught_up > sent_since_join + 30,
            "{caught_up} {sent_since_join}"
        );
    }
    // The first viewer (before the joins) started from the cache too.
    assert_eq!(net.metrics.replayed_starts.get(), 21);
}

/// A publisher on shard 0 and `per_shard` viewers on each of `shards` shards, connected.
fn sharded_stage(shards: u16, per_shard: usize) -> Net {
    let mut net = Net::sharded(shards);
    net.publisher();
    for shard in 0..usize::from(shards) {
        for _ in 0..per_shard {
            net.viewer_on(shard);
        }
    }
    net.run(Duration::from_secs(3), true);
    assert!(
        net.clients.iter().all(|c| c.connected),
        "every client connects"
    );
    net
}

/// Issue 11 part 1: the publisher's packets reach every shard once and each shard's viewers
/// get exactly what was sent, as on one shard.
#[test]
fn viewers_on_different_shards_get_exactly_the_publishers_packets() {
    let mut net = sharded_stage(3, 2);
    assert_eq!(net.relay.peer_counts(), (1, 2));
    assert_eq!(net.others[0].peer_counts(), (0, 2));
    assert_eq!(net.others[1].peer_counts(), (0, 2));
    net.run(Duration::from_millis(300), false);
    let (video0, audio0) = (net.sent_video, net.sent_audio);
    let before: Vec<(u64, u64)> = net.clients[1..]
        .iter()
        .map(|c| (c.received_video, c.received_audio))
        .collect();
    net.run(Duration::from_secs(2), true);
    net.run(Duration::from_secs(1), false);
    let (sent_video, sent_audio) = (net.sent_video - video0, net.sent_audio - audio0);
    assert!(sent_video > 150 && sent_audio > 90);
    for (i, (c, (v0, a0))) in net.clients[1..].iter().zip(before).enumerate() {
        assert_eq!(c.received_video - v0, sent_video, "video, viewer {i}");
        assert_eq!(c.received_audio - a0, sent_audio, "audio, viewer {i}");
        assert!(
            c.video_seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "viewer {i}"
        );
    }
    // Received once (on the publisher's shard), forwarded six times.
    assert!(net.metrics.forwarded_packets.get() >= 6 * (sent_video + sent_audio));
    let meeting = net.meeting.clone();
    assert_eq!(net.relay.stage(net.now, &meeting).len(), 1);
}

/// A viewer that vanishes on one shard disturbs nobody on any shard, and its shard drops it.
#[test]
fn a_vanished_viewer_on_one_shard_disturbs_nobody() {
    let mut net = sharded_stage(2, 2);
    net.run(Duration::from_millis(300), false);
    net.clients[3].plugged = false; // the first viewer on shard 1
    let before: Vec<u64> = net.clients.iter().map(|c| c.received_video).collect();
    let sent0 = net.sent_video;
    net.run(Duration::from_secs(2), true);
    net.run(Duration::from_millis(500), false);
    let sent = net.sent_video - sent0;
    for i in [1, 2, 4] {
        assert_eq!(
            net.clients[i].received_video - before[i],
            sent,
            "viewer {i}"
        );
    }
    assert_eq!(net.clients[3].received_video, before[3]);
    for _ in 0..60 {
        if net.others[0].peer_counts() == (0, 1) {
            assert_eq!(net.relay.peer_counts(), (1, 2));
            return;
        }
        net.run(Duration::from_secs(1), true);
    }
    panic!("the vanished viewer was never removed");
}

/// Simulcast layers are chosen on the viewer's shard; the keyframe requests that a switch
/// needs travel to the publisher's shard; the viewer sees no gap.
#[test]
fn layer_switches_work_without_gaps_across_shards() {
    let mut net = Net::sharded(2);
    net.simulcast = true;
    net.publisher();
    let (index, session) = net.viewer_session(1);
    let meeting = net.meeting.clone();
    net.run(Duration::from_secs(3), true);
    assert_eq!(net.clients[index].video_sizes.last(), Some(&1000));
    net.others[0]
        .set_layer(&meeting, &session, Some("q"))
        .unwrap();
    net.run(Duration::from_secs(2), true);
    assert_eq!(net.clients[index].video_sizes.last(), Some(&300));
    net.others[0].set_layer(&meeting, &session, None).unwrap();
    net.run(Duration::from_secs(2), true);
    let viewer = &net.clients[index];
    assert_eq!(viewer.video_sizes.last(), Some(&1000));
    assert!(
        viewer.video_seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "{:?}",
        viewer.video_seqs
    );
    assert!(net.metrics.layer_switches.get() >= 2);
    // The session lives on shard 1 only.
    assert_eq!(
        net.relay.set_layer(&meeting, &session, None),
        Err(MediaError::NoSession)
    );
}

/// The node's per-address limit holds over all shards together.
#[test]
fn limits_hold_over_all_shards() {
    let mut net = Net::sharded(2);
    for i in 0..60 {
        let (_, _, offer) = net.client(Direction::RecvOnly);
        let (now, meeting) = (net.now, net.meeting.clone());
        net.shard(i % 2)
            .view(now, CLIENT_IP, meeting, &offer)
            .unwrap();
    }
    let (_, _, offer) = net.client(Direction::RecvOnly);
    let (now, meeting) = (net.now, net.meeting.clone());
    let refused = net.shard(1).view(now, CLIENT_IP, meeting, &offer);
    assert_eq!(refused.unwrap_err(), MediaError::TooManySessions);
}
