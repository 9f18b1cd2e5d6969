//! Rate limits, pure, with time passed in: token buckets, and the limits one client address
//! has in one meeting over every participant behind it ([`AddressLimits`]).

use crate::HubConfig;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;
use tokio::time::Instant;
use townhall_core::{
    Command, Meeting, ParticipantId, QuestionId, QuestionStatus, Rejection, Timestamp,
};

/// Allows `rate` actions per second on average and bursts of up to `burst`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: rate.max(0.001),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// A token bucket on the meeting's clock (milliseconds), for limits decided in the room.
#[derive(Clone, Debug)]
struct MsBucket {
    tokens: f64,
    last: u64,
}

impl MsBucket {
    fn full(burst: u32) -> Self {
        Self {
            tokens: f64::from(burst),
            last: 0,
        }
    }

    fn refilled(&self, per_min: u32, now: u64) -> f64 {
        let elapsed = now.saturating_sub(self.last) as f64;
        (self.tokens + elapsed * f64::from(per_min) / 60_000.0).min(f64::from(per_min))
    }

    /// Ok, or milliseconds until a token is there.
    fn check(&self, per_min: u32, now: u64) -> Result<(), u64> {
        if per_min == 0 {
            return Ok(());
        }
        let tokens = self.refilled(per_min, now);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(((1.0 - tokens) * 60_000.0 / f64::from(per_min)).ceil() as u64)
        }
    }

    fn take(&mut self, per_min: u32, now: u64) {
        if per_min == 0 {
            return;
        }
        self.tokens = (self.refilled(per_min, now) - 1.0).max(0.0);
        self.last = now;
    }
}

/// What a citizen's command spends of its address's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressCost {
    Question,
    Comment,
    Vote,
    Rename,
    /// Not limited per address (poll answers are one per participant and poll).
    Free,
}

impl AddressCost {
    pub fn of(command: &Command) -> Self {
        match command {
            Command::AskQuestion(_) => AddressCost::Question,
            Command::PostComment(_) => AddressCost::Comment,
            Command::Upvote(_) | Command::RetractUpvote(_) => AddressCost::Vote,
            Command::SetName(_) => AddressCost::Rename,
            _ => AddressCost::Free,
        }
    }

    fn what(self) -> &'static str {
        match self {
            AddressCost::Question => "questions",
            AddressCost::Comment => "comments",
            AddressCost::Vote => "votes",
            AddressCost::Rename => "name changes",
            AddressCost::Free => "commands",
        }
    }
}

/// One address in one meeting.
#[derive(Debug)]
struct Address {
    sessions: usize,
    questions: MsBucket,
    comments: MsBucket,
    votes: MsBucket,
    renames: MsBucket,
    /// Times of the latest questions and comments, for slow mode (at most `people` kept).
    posts: VecDeque<u64>,
    /// Questions asked from here, pruned to the pending ones.
    asked: Vec<QuestionId>,
    /// Participants who joined from here, for bans by address.
    seen: Vec<ParticipantId>,
}

/// Participants remembered per address for bans; the oldest unbanned are forgotten first.
const MAX_SEEN: usize = 1024;
/// Addresses kept per meeting before those without sessions or bans are forgotten.
const MAX_ADDRESSES: usize = 10_000;

/// The limits one client address has in one meeting, over every participant behind it: a
/// new cookie (or none) is a new participant, but not a new address. Citizens only; staff are
/// never held back. Kept in the room's memory, not in the log: a room loaded again (restart,
/// another node) starts them afresh.
///
/// - Questions, comments, votes and name changes per minute (`hub.address_*_per_min`, also
///   the burst).
/// - Slow mode: `hub.people_per_address` posts per slow-mode interval, not one.
/// - Pending questions: `people_per_address` times the per-participant limit.
/// - Bans (`hub.ban_by_address`): a participant banned in the meeting also bars new citizen
///   sessions from the addresses they joined from.
#[derive(Debug)]
pub struct AddressLimits {
    people: usize,
    questions_per_min: u32,
    comments_per_min: u32,
    votes_per_min: u32,
    renames_per_min: u32,
    ban_by_address: bool,
    addresses: HashMap<IpAddr, Address>,
}

impl AddressLimits {
    pub fn new(config: &HubConfig) -> Self {
        Self {
            people: config.people_per_address as usize,
            questions_per_min: config.address_questions_per_min,
            comments_per_min: config.address_comments_per_min,
            votes_per_min: config.address_votes_per_min,
            renames_per_min: config.address_renames_per_min,
            ban_by_address: config.ban_by_address,
            addresses: HashMap::new(),
        }
    }

    fn rate(&self, cost: AddressCost) -> u32 {
        match cost {
            AddressCost::Question => self.questions_per_min,
            AddressCost::Comment => self.comments_per_min,
            AddressCost::Vote => self.votes_per_min,
            AddressCost::Rename => self.renames_per_min,
            AddressCost::Free => 0,
        }
    }

    fn bucket(a: &Address, cost: AddressCost) -> Option<&MsBucket> {
        match cost {
            AddressCost::Question => Some(&a.questions),
            AddressCost::Comment => Some(&a.comments),
            AddressCost::Vote => Some(&a.votes),
            AddressCost::Rename => Some(&a.renames),
            AddressCost::Free => None,
        }
    }

    fn entry(&mut self, ip: IpAddr) -> &mut Address {
        let rates = [
            self.questions_per_min,
            self.comments_per_min,
            self.votes_per_min,
            self.renames_per_min,
        ];
        self.addresses.entry(ip).or_insert_with(|| Address {
            sessions: 0,
            questions: MsBucket::full(rates[0]),
            comments: MsBucket::full(rates[1]),
            votes: MsBucket::full(rates[2]),
            renames: MsBucket::full(rates[3]),
            posts: VecDeque::new(),
            asked: Vec::new(),
            seen: Vec::new(),
        })
    }

    /// Whether a citizen joining from `ip` is barred because a participant who joined from it
    /// is banned in `meeting`.
    pub fn barred(&self, ip: IpAddr, meeting: &Meeting) -> bool {
        self.ban_by_address
            && self.addresses.get(&ip).is_some_and(|a| {
                a.seen
                    .iter()
                    .any(|p| meeting.participant(p).is_some_and(|p| p.banned))
            })
    }

    /// A citizen session of `participant` joined from `ip`.
    pub fn joined(&mut self, ip: IpAddr, participant: &ParticipantId, meeting: &Meeting) {
        let a = self.entry(ip);
        a.sessions += 1;
        if !a.seen.contains(participant) {
            if a.seen.len() >= MAX_SEEN {
                let banned = |p: &ParticipantId| meeting.participant(p).is_some_and(|p| p.banned);
                match a.seen.iter().position(|p| !banned(p)) {
                    Some(i) => {
                        a.seen.remove(i);
                    }
                    None => return,
                }
            }
            a.seen.push(participant.clone());
        }
    }

    /// A citizen session from `ip` left. Participants the meeting does not know (who never
    /// did anything) are forgotten: they cannot have been banned.
    pub fn left(
        &mut self,
        ip: IpAddr,
        participant: &ParticipantId,
        still_here: bool,
        meeting: &Meeting,
    ) {
        if let Some(a) = self.addresses.get_mut(&ip) {
            a.sessions = a.sessions.saturating_sub(1);
            if !still_here && meeting.participant(participant).is_none() {
                a.seen.retain(|p| p != participant);
            }
        }
        if self.addresses.len() > MAX_ADDRESSES {
            self.addresses.retain(|_, a| {
                a.sessions > 0
                    || a.seen
                        .iter()
                        .any(|p| meeting.participant(p).is_some_and(|p| p.banned))
            });
        }
    }

    /// Whether a citizen's command from `ip` fits the address's limits at `now`; spends
    /// nothing (see [`AddressLimits::spend`]).
    pub fn check(
        &self,
        ip: IpAddr,
        command: &Command,
        meeting: &Meeting,
        now: Timestamp,
    ) -> Result<(), Rejection> {
        let cost = AddressCost::of(command);
        let Some(a) = self.addresses.get(&ip) else {
            return Ok(());
        };
        if let Some(bucket) = Self::bucket(a, cost) {
            bucket
                .check(self.rate(cost), now.0)
                .map_err(|retry_after_ms| Rejection::AddressLimited {
                    what: cost.what(),
                    retry_after_ms,
                })?;
        }
        let posts = matches!(cost, AddressCost::Question | AddressCost::Comment);
        if posts && self.people > 0 && meeting.slow_mode_secs > 0 && a.posts.len() >= self.people {
            let window = u64::from(meeting.slow_mode_secs) * 1000;
            let oldest = a.posts[a.posts.len() - self.people];
            let since = now.0.saturating_sub(oldest);
            if since < window {
                return Err(Rejection::AddressSlowMode {
                    retry_after_ms: window - since,
                });
            }
        }
        if cost == AddressCost::Question && self.people > 0 {
            let max = meeting.limits.max_pending_per_participant * self.people;
            let pending = a
                .asked
                .iter()
                .filter(|q| {
                    meeting
                        .questions
                        .get(q)
                        .is_some_and(|q| q.status == QuestionStatus::Pending)
                })
                .count();
            if pending >= max {
                return Err(Rejection::AddressPending { max });
            }
        }
        Ok(())
    }

    /// Spends what an accepted command from `ip` cost; `asked` is the question it created.
    pub fn spend(
        &mut self,
        ip: IpAddr,
        command: &Command,
        meeting: &Meeting,
        now: Timestamp,
        asked: Option<QuestionId>,
    ) {
        let cost = AddressCost::of(command);
        if cost == AddressCost::Free {
            return;
        }
        let rate = self.rate(cost);
        let people = self.people;
        let a = self.entry(ip);
        match cost {
            AddressCost::Question => a.questions.take(rate, now.0),
            AddressCost::Comment => a.comments.take(rate, now.0),
            AddressCost::Vote => a.votes.take(rate, now.0),
            AddressCost::Rename => a.renames.take(rate, now.0),
            AddressCost::Free => {}
        }
        if matches!(cost, AddressCost::Question | AddressCost::Comment) && people > 0 {
            a.posts.push_back(now.0);
            while a.posts.len() > people {
                a.posts.pop_front();
            }
        }
        if let Some(q) = asked {
            a.asked.retain(|q| {
                meeting
                    .questions
                    .get(q)
                    .is_some_and(|q| q.status == QuestionStatus::Pending)
            });
            a.asked.push(q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use townhall_core::command::{ApproveQuestion, CreateMeeting, SetSlowMode, StartMeeting};
    use townhall_core::command::{AskQuestion, PostComment, SetName, Upvote};
    use townhall_core::{Actor, EventKind, MeetingId, Recorded, Role};

    const T0: u64 = 1_760_000_000_000;

    fn live() -> Meeting {
        let mut m = Meeting::new(MeetingId::parse("address-test").unwrap());
        let org = Actor::organizer();
        run(
            &mut m,
            &org,
            Command::CreateMeeting(CreateMeeting {
                title: "Møde".into(),
            }),
            T0,
        );
        run(&mut m, &org, Command::StartMeeting(StartMeeting), T0);
        m
    }

    fn run(m: &mut Meeting, actor: &Actor, cmd: Command, at: u64) -> Option<QuestionId> {
        let events = m.decide(actor, &cmd, Timestamp(at)).unwrap();
        let mut asked = None;
        for event in events {
            if let EventKind::QuestionAsked(q) = &event.kind {
                asked = Some(q.question);
            }
            let rec = Recorded {
                offset: m.offset + 1,
                event,
            };
            m.apply(&rec);
        }
        asked
    }

    fn citizen(n: usize) -> Actor {
        Actor::new(
            ParticipantId::parse(&format!("citizen-{n}")).unwrap(),
            Role::Citizen,
        )
    }

    fn config() -> HubConfig {
        HubConfig {
            people_per_address: 3,
            address_questions_per_min: 6,
            address_comments_per_min: 60,
            address_votes_per_min: 60,
            address_renames_per_min: 2,
            ..HubConfig::default()
        }
    }

    /// Every command from a new participant (a new cookie) on one address: what the address
    /// lets through.
    fn accepted(
        limits: &mut AddressLimits,
        m: &mut Meeting,
        ip: IpAddr,
        cmds: &[(Command, u64)],
    ) -> Vec<Result<(), &'static str>> {
        let mut out = Vec::new();
        for (n, (cmd, at)) in cmds.iter().enumerate() {
            let actor = citizen(1000 + n);
            limits.joined(ip, &actor.participant, m);
            let r = limits.check(ip, cmd, m, Timestamp(*at)).map(|()| {
                let asked = run(m, &actor, cmd.clone(), *at);
                limits.spend(ip, cmd, m, Timestamp(*at), asked);
            });
            out.push(r.map_err(|e| e.code()));
        }
        out
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn pending_questions_and_the_question_rate_hold_across_participants() {
        let mut m = live();
        let mut limits = AddressLimits::new(&config());
        let ask = |i: u64| {
            (
                Command::AskQuestion(AskQuestion {
                    text: format!("Spørgsmål {i}"),
                    anonymous: false,
                }),
                T0 + i,
            )
        };
        // The rate: 6 per minute, a burst of 6, from six different participants.
        let cmds: Vec<_> = (0..8).map(ask).collect();
        let got = accepted(&mut limits, &mut m, ip("10.0.0.1"), &cmds);
        assert_eq!(got.iter().filter(|r| r.is_ok()).count(), 6, "{got:?}");
        assert_eq!(got[6], Err("rate_limited"));
        // Another address is not affected.
        let got = accepted(&mut limits, &mut m, ip("10.0.0.2"), &cmds[..1]);
        assert_eq!(got, [Ok(())]);
        // A minute later the rate allows more, but 3 people × 5 pending is the cap... not yet
        // reached (6 pending): at 15 pending the address waits for moderation.
        let later: Vec<_> = (0..40).map(|i| ask(60_000 * (i + 1))).collect();
        let got = accepted(&mut limits, &mut m, ip("10.0.0.1"), &later);
        let first_refusal = got.iter().position(|r| r.is_err()).unwrap();
        assert_eq!(got[first_refusal], Err("too_many_pending"));
        assert_eq!(6 + got.iter().filter(|r| r.is_ok()).count(), 15);
        // A decision frees a place.
        let q = m.questions.keys().next().copied().unwrap();
        run(
            &mut m,
            &Actor::new(
                ParticipantId::parse("moderator-1").unwrap(),
                Role::Moderator,
            ),
            Command::ApproveQuestion(ApproveQuestion { question: q }),
            T0 + 3_000_000,
        );
        let got = accepted(&mut limits, &mut m, ip("10.0.0.1"), &[ask(3_000_001)]);
        assert_eq!(got, [Ok(())]);
    }

    #[test]
    fn slow_mode_holds_for_an_address_at_people_per_address() {
        let mut m = live();
        let moderator = Actor::new(
            ParticipantId::parse("moderator-1").unwrap(),
            Role::Moderator,
        );
        run(
            &mut m,
            &moderator,
            Command::SetSlowMode(SetSlowMode { seconds: 60 }),
            T0,
        );
        let mut limits = AddressLimits::new(&config());
        let comment = |i: u64| {
            (
                Command::PostComment(PostComment {
                    text: format!("Kommentar {i}"),
                }),
                T0 + i * 100,
            )
        };
        let cmds: Vec<_> = (0..10).map(comment).collect();
        let got = accepted(&mut limits, &mut m, ip("10.0.0.1"), &cmds);
        assert_eq!(got.iter().filter(|r| r.is_ok()).count(), 3, "{got:?}");
        let refused = limits
            .check(ip("10.0.0.1"), &cmds[0].0, &m, Timestamp(T0 + 1000))
            .unwrap_err();
        assert_eq!(refused.code(), "slow_mode");
        assert!(refused.retry_after_ms().unwrap() > 58_000);
        // After the interval the address may post again.
        let got = accepted(&mut limits, &mut m, ip("10.0.0.1"), &[comment(700)]);
        assert_eq!(got, [Ok(())]);
    }

    #[test]
    fn votes_and_name_changes_have_their_own_rates() {
        let mut m = live();
        let mut limits = AddressLimits::new(&config());
        let rename = |i: u64| {
            (
                Command::SetName(SetName {
                    name: format!("Navn {i}"),
                }),
                T0 + i,
            )
        };
        let got = accepted(
            &mut limits,
            &mut m,
            ip("10.0.0.1"),
            &[rename(0), rename(1), rename(2)],
        );
        assert_eq!(got, [Ok(()), Ok(()), Err("rate_limited")]);
        let refused = limits
            .check(ip("10.0.0.1"), &rename(3).0, &m, Timestamp(T0 + 3))
            .unwrap_err();
        assert!(refused.retry_after_ms().unwrap() > 29_000, "{refused:?}");
        // Votes are not spent by names.
        let vote = Command::Upvote(Upvote {
            question: QuestionId(1),
        });
        assert!(
            limits
                .check(ip("10.0.0.1"), &vote, &m, Timestamp(T0 + 3))
                .is_ok()
        );
    }

    #[test]
    fn a_ban_bars_the_address_it_joined_from_unless_turned_off() {
        let mut m = live();
        let moderator = Actor::new(
            ParticipantId::parse("moderator-1").unwrap(),
            Role::Moderator,
        );
        let anna = citizen(1);
        let mut limits = AddressLimits::new(&config());
        limits.joined(ip("10.0.0.1"), &anna.participant, &m);
        run(
            &mut m,
            &anna,
            Command::SetName(SetName {
                name: "Anna".into(),
            }),
            T0,
        );
        assert!(!limits.barred(ip("10.0.0.1"), &m));
        run(
            &mut m,
            &moderator,
            Command::BanParticipant(townhall_core::command::BanParticipant {
                participant: anna.participant.clone(),
            }),
            T0,
        );
        limits.left(ip("10.0.0.1"), &anna.participant, false, &m);
        assert!(limits.barred(ip("10.0.0.1"), &m));
        assert!(!limits.barred(ip("10.0.0.2"), &m));
        run(
            &mut m,
            &moderator,
            Command::UnbanParticipant(townhall_core::command::UnbanParticipant {
                participant: anna.participant.clone(),
            }),
            T0,
        );
        assert!(!limits.barred(ip("10.0.0.1"), &m));

        let mut off = AddressLimits::new(&HubConfig {
            ban_by_address: false,
            ..config()
        });
        run(
            &mut m,
            &moderator,
            Command::BanParticipant(townhall_core::command::BanParticipant {
                participant: anna.participant.clone(),
            }),
            T0,
        );
        off.joined(ip("10.0.0.1"), &anna.participant, &m);
        assert!(!off.barred(ip("10.0.0.1"), &m));
    }

    #[test]
    fn allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2.0, 3, t0);
        assert!((0..3).all(|_| b.try_take(t0).is_ok()));
        let wait = b.try_take(t0).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        assert!(b.try_take(t0 + Duration::from_millis(500)).is_ok());
        assert!(b.try_take(t0 + Duration::from_millis(500)).is_err());
    }
}
