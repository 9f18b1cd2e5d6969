// A client's model of the meeting, folded from server frames exactly like
// crates/core/src/client.rs (ClientView::apply): after every frame up to offset N the model
// equals the participant's snapshot of the log at N.

export class ViewModel {
  constructor() {
    this.offset = 0;
    /** @type {null | {id,title,status,qa_open,chat_open,slow_mode_secs,announcement?,queue:number[],on_air?}} */
    this.meeting = null;
    /** @type {null | {participant,name?,muted,banned}} */
    this.you = null;
    /** @type {Map<number, object>} QuestionView by id */
    this.questions = new Map();
    /** @type {Map<number, object>} CommentView by id */
    this.comments = new Map();
    /** @type {Set<number>} */
    this.voted = new Set();
    /** @type {Map<string, object>} ParticipantView by id (staff only) */
    this.participants = new Map();
    /** @type {Map<number, {id,question,options:string[],open:boolean,counts:number[]}>} PollView by id */
    this.polls = new Map();
    /** @type {Map<number, number>} this participant's answer (option index) per poll */
    this.answered = new Map();
    this.online = 0;
    /** A snapshot arrived in parts and not all of them yet. */
    this.snapshotPending = false;
    /** From `welcome`, not part of the view proper. */
    this.role = null;
    this.participant = null;
  }

  get ready() {
    return this.meeting !== null;
  }

  welcome(msg) {
    this.role = msg.role;
    this.participant = msg.participant;
  }

  reset(s) {
    this.offset = s.offset;
    this.meeting = s.meeting;
    this.you = s.you;
    this.questions = new Map((s.questions || []).map((q) => [q.id, q]));
    this.comments = new Map((s.comments || []).map((c) => [c.id, c]));
    this.voted = new Set(s.voted || []);
    this.participants = new Map((s.participants || []).map((p) => [p.id, p]));
    this.polls = new Map((s.polls || []).map((p) => [p.id, p]));
    this.answered = new Map((s.answered || []).map((a) => [a.poll, a.option]));
    // online is kept: a snapshot does not carry presence.
  }

  /** Folds one frame into the view (ClientView::apply). Frames that are not view updates are
   *  ignored. An `event` frame carries the new versions of whatever one logged event changed;
   *  each present field is upserted, absent fields did not change. */
  apply(msg) {
    if (typeof msg.offset === 'number') this.offset = Math.max(this.offset, msg.offset);
    switch (msg.t) {
      case 'snapshot':
        this.reset(msg);
        this.snapshotPending = !!msg.more;
        break;
      case 'snapshot_more':
        // The rest of a snapshot sent in parts (bounded frames keep server buffers small).
        for (const q of msg.questions || []) this.questions.set(q.id, q);
        for (const c of msg.comments || []) this.comments.set(c.id, c);
        for (const p of msg.participants || []) this.participants.set(p.id, p);
        this.snapshotPending = !!msg.more;
        break;
      case 'event':
        for (const q of msg.questions || []) {
          // A merge moves the votes of the duplicate to its target, ours included; the frame
          // does not say so per voter, so follow it here.
          if (q.merged_into !== undefined && q.merged_into !== null && msg.kind === 'question_merged' && this.voted.has(q.id)) {
            this.voted.add(q.merged_into);
          }
          this.questions.set(q.id, q);
        }
        if (msg.comment) this.comments.set(msg.comment.id, msg.comment);
        if (msg.comment_removed !== undefined && msg.comment_removed !== null) this.comments.delete(msg.comment_removed);
        if (msg.meeting) this.meeting = msg.meeting;
        if (msg.participant) this.participants.set(msg.participant.id, msg.participant);
        if (msg.poll) this.polls.set(msg.poll.id, msg.poll);
        if (msg.answered) this.answered.set(msg.answered.poll, msg.answered.option);
        if (msg.you) this.you = msg.you;
        if (msg.voted) {
          if (msg.voted.voted) this.voted.add(msg.voted.question);
          else this.voted.delete(msg.voted.question);
        }
        break;
      case 'votes':
        for (const [id, votes] of Object.entries(msg.tallies || {})) {
          const q = this.questions.get(Number(id));
          if (q) this.questions.set(q.id, { ...q, votes });
        }
        break;
      case 'poll_results':
        for (const r of msg.results || []) {
          const p = this.polls.get(r.id);
          if (p) this.polls.set(p.id, { ...p, counts: r.counts });
        }
        break;
      case 'presence':
        this.online = msg.online;
        break;
      default:
        break;
    }
  }

  // Derived views used by the pages.

  question(id) {
    return id === null || id === undefined ? undefined : this.questions.get(id);
  }

  onAir() {
    return this.question(this.meeting?.on_air);
  }

  queue() {
    return (this.meeting?.queue || []).map((id) => this.questions.get(id)).filter(Boolean);
  }

  byStatus(...statuses) {
    return [...this.questions.values()].filter((q) => statuses.includes(q.status));
  }

  /** Open questions (approved or queued) by votes, most first; ties by who asked first. */
  openByVotes() {
    return this.byStatus('approved', 'queued').sort(
      (a, b) => b.votes - a.votes || a.asked_at - b.asked_at || a.id - b.id,
    );
  }

  mine() {
    return [...this.questions.values()].filter((q) => q.mine).sort((a, b) => b.id - a.id);
  }

  commentList() {
    return [...this.comments.values()].sort((a, b) => a.id - b.id);
  }

  /** Every poll: open ones first, then newest first. */
  pollList() {
    return [...this.polls.values()].sort((a, b) => Number(b.open) - Number(a.open) || b.id - a.id);
  }

  /** The poll the studio shows: the newest open one, else the last one closed (the newest). */
  currentPoll() {
    return this.pollList()[0];
  }
}
