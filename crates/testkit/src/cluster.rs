//! Several real `townhall` nodes on loopback sharing one Redis ([`Cluster`]), clients that
//! follow a meeting from node to node when theirs dies ([`Roamer`]), and what the log says each
//! participant must have received ([`expected_event_offsets`]).

use crate::{Client, Launch, Process};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use townhall_core::fanout::{Update, updates};
use townhall_core::view::Viewer;
use townhall_core::wire::ServerMessage;
use townhall_core::{Command, Meeting, MeetingId, Offset, ParticipantId, Recorded, Role};

/// Hub limits for nodes whose simulated citizens all come from 127.0.0.1: the per-address
/// command and frame buckets and the limits per address (as `without_rate_limits` lifts them
/// in-process) would otherwise refuse them as one abuser.
const UNLIMITED: &str = "\
[hub]
frames_per_sec = 100000.0
frame_burst = 100000
commands_per_sec = 100000.0
command_burst = 100000
ip_commands_per_sec = 100000.0
ip_command_burst = 100000
people_per_address = 0
address_questions_per_min = 0
address_comments_per_min = 0
address_votes_per_min = 0
address_renames_per_min = 0
";

/// `n` `townhall serve` processes (`node-1` …) on `127.0.0.1:0`, each with its own data dir and
/// log file, all on one Redis URL and key prefix: one deployment. Killed when dropped.
#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<Option<Process>>,
    launch: Vec<Launch>,
    root: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes of `bin` (`env!("CARGO_BIN_EXE_townhall")`) on `redis_url` under
    /// `prefix`, with rate limits lifted.
    pub fn start(bin: impl AsRef<Path>, redis_url: &str, prefix: &str, n: usize) -> Self {
        Self::start_with(bin, redis_url, prefix, n, "")
    }

    /// [`start`](Cluster::start) with more config file text (TOML, after the `[hub]` limits;
    /// it may open sections of its own).
    pub fn start_with(
        bin: impl AsRef<Path>,
        redis_url: &str,
        prefix: &str,
        n: usize,
        extra_config: &str,
    ) -> Self {
        let root = tempfile::tempdir().unwrap();
        let config = root.path().join("townhall.toml");
        std::fs::write(&config, format!("{UNLIMITED}{extra_config}")).unwrap();
        let launch: Vec<Launch> = (1..=n)
            .map(|i| {
                let dir = root.path().join(format!("node-{i}"));
                std::fs::create_dir(&dir).unwrap();
                Launch::new(bin.as_ref(), &dir)
                    .arg("--config")
                    .arg(&config)
                    .args(["--redis", redis_url, "--redis-prefix", prefix])
                    .args(["--node-id", &format!("node-{i}")])
                    .env("TOWNHALL_LOG", "warn,townhall_hub=info")
                    .log_to(root.path().join(format!("node-{i}.log")))
            })
            .collect();
        let nodes = launch.iter().map(|l| Some(l.clone().spawn())).collect();
        Self {
            nodes,
            launch,
            root,
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i` (from 0); panics if it was killed.
    pub fn node(&self, i: usize) -> &Process {
        self.nodes[i]
            .as_ref()
            .unwrap_or_else(|| panic!("node {i} was killed"))
    }

    pub fn base(&self, i: usize) -> String {
        self.node(i).base.clone()
    }

    /// The base URL of node `i`, or `None` if it was killed.
    pub fn try_base(&self, i: usize) -> Option<String> {
        self.nodes[i].as_ref().map(|p| p.base.clone())
    }

    pub fn ws_url(&self, i: usize) -> String {
        self.node(i).ws_url()
    }

    /// The WebSocket URLs of every node still running.
    pub fn ws_urls(&self) -> Vec<String> {
        self.nodes.iter().flatten().map(Process::ws_url).collect()
    }

    /// `kill -9` of node `i`: nothing it held in memory survives.
    pub fn kill9(&mut self, i: usize) {
        if let Some(p) = self.nodes[i].take() {
            p.kill9();
        }
    }

    /// Starts node `i` again (same data dir, new port).
    pub fn restart(&mut self, i: usize) {
        self.kill9(i);
        self.nodes[i] = Some(self.launch[i].clone().spawn());
    }

    /// The log file of node `i` (`warn`, plus the hub's `info`).
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.root.path().join(format!("node-{}.log", i + 1))
    }

    /// Every node's log, for a failing test's message.
    pub fn logs(&self) -> String {
        (0..self.nodes.len())
            .map(|i| {
                let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- node-{} ---\n{}\n", i + 1, tail.join("\n"))
            })
            .collect()
    }
}

/// What became of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Acked(Offset),
    Refused(String),
    /// The connection closed before an answer: committed or not, the log will tell.
    Lost,
}

/// A participant who stays in the meeting when their node dies: on a closed connection they
/// reconnect to the next node that accepts and resume with `since` (their view's offset) and
/// their session, as the pages do. Every `event` frame's offset over all connections is kept,
/// so a test can count what was missed or received twice.
#[derive(Debug)]
pub struct Roamer {
    pub client: Client,
    urls: Vec<String>,
    at: usize,
    meeting: String,
    token: Option<String>,
    /// The offset the first snapshot reflected: frames are expected after it.
    pub joined_at: Offset,
    /// Offsets of every `event` frame received, over all connections, in order.
    pub event_offsets: Vec<Offset>,
    /// Snapshots received after the first (a resume that could not be exact).
    pub later_snapshots: usize,
    pub reconnects: u32,
}

impl Roamer {
    /// Joins through `urls[first]`; later connections try the others in turn.
    pub async fn join(urls: Vec<String>, first: usize, meeting: &str, token: Option<&str>) -> Self {
        let mut client = Client::connect(&urls[first]).await;
        client.hello(meeting, token, None, None).await;
        client.until(|v| v.meeting.is_some()).await;
        let joined_at = client.view.offset;
        Self {
            client,
            urls,
            at: first,
            meeting: meeting.to_owned(),
            token: token.map(str::to_owned),
            joined_at,
            event_offsets: Vec::new(),
            later_snapshots: 0,
            reconnects: 0,
        }
    }

    /// The URL of the node this roamer is on now.
    pub fn url(&self) -> &str {
        &self.urls[self.at]
    }

    pub fn participant(&self) -> ParticipantId {
        ParticipantId::parse(self.client.participant.as_deref().unwrap()).unwrap()
    }

    /// Moves the frames of the current connection into the totals.
    fn harvest(&mut self) {
        let first = self.event_offsets.is_empty() && self.reconnects == 0;
        let mut snapshots = 0usize;
        for m in self.client.received.drain(..) {
            match m {
                ServerMessage::Event(e) => self.event_offsets.push(e.offset),
                ServerMessage::Snapshot(_) => snapshots += 1,
                _ => {}
            }
        }
        self.later_snapshots += if first {
            snapshots.saturating_sub(1)
        } else {
            snapshots
        };
    }

    /// Every event offset received so far, this connection's included.
    pub fn all_event_offsets(&mut self) -> Vec<Offset> {
        self.harvest();
        self.event_offsets.clone()
    }

    /// Reconnects to the next node that accepts (starting after the current one) and resumes.
    pub async fn reconnect(&mut self) {
        self.harvest();
        let view = self.client.view.clone();
        let session = self.client.session.clone();
        for step in 1..=self.urls.len() {
            let at = (self.at + step) % self.urls.len();
            let Some(mut next) = Client::try_connect(&self.urls[at]).await else {
                continue;
            };
            next.view = view.clone();
            next.participant.clone_from(&self.client.participant);
            next.hello(
                &self.meeting,
                self.token.as_deref(),
                Some(view.offset),
                session.as_deref(),
            )
            .await;
            self.client = next;
            self.at = at;
            self.reconnects += 1;
            return;
        }
        panic!("no node accepts a connection");
    }

    /// Sends a command and waits for its answer; [`Outcome::Lost`] when the connection closes
    /// first (then call [`reconnect`](Roamer::reconnect)).
    pub async fn run(&mut self, cmd: Command) -> Outcome {
        let r = self.client.send_or_lost(cmd).await;
        let Some(r) = r else {
            return Outcome::Lost;
        };
        match self.client.try_reply_to(r).await {
            Some(Ok(offset)) => Outcome::Acked(offset),
            Some(Err(code)) => Outcome::Refused(code),
            None => Outcome::Lost,
        }
    }

    /// Receives until the view satisfies `pred`, reconnecting whenever the connection closes.
    pub async fn until(&mut self, pred: impl Fn(&townhall_core::client::ClientView) -> bool) {
        while self.client.view.snapshot_pending || !pred(&self.client.view) {
            if self.client.recv().await.is_none() {
                self.reconnect().await;
            }
        }
    }
}

/// The offsets after `after` whose `event` frames `viewer` must receive, from the whole log:
/// what every session of that participant and role is owed, whichever node serves it.
pub fn expected_event_offsets(
    meeting: &MeetingId,
    log: &[Recorded],
    viewer: &Viewer,
    after: Offset,
) -> Vec<Offset> {
    let mut m = Meeting::new(meeting.clone());
    let mut owed = Vec::new();
    for rec in log {
        m.apply(rec);
        if rec.offset <= after {
            continue;
        }
        let sent = updates(&m, rec).into_iter().any(
            |u| matches!(&u, Update::Send(aud, ServerMessage::Event(_)) if aud.includes(viewer)),
        );
        if sent {
            owed.push(rec.offset);
        }
    }
    owed
}

/// What a participant received against what they were owed: offsets never received, and
/// offsets received more than once.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub missed: Vec<Offset>,
    pub duplicated: Vec<Offset>,
}

impl Delivery {
    pub fn check(owed: &[Offset], received: &[Offset]) -> Self {
        let mut counts: BTreeMap<Offset, u32> = BTreeMap::new();
        for &o in received {
            *counts.entry(o).or_default() += 1;
        }
        Self {
            missed: owed
                .iter()
                .copied()
                .filter(|o| !counts.contains_key(o))
                .collect(),
            duplicated: counts
                .into_iter()
                .filter(|&(_, n)| n > 1)
                .map(|(o, _)| o)
                .collect(),
        }
    }
}

/// A viewer of `role` for [`expected_event_offsets`].
pub fn viewer(participant: ParticipantId, role: Role) -> Viewer {
    Viewer { participant, role }
}
