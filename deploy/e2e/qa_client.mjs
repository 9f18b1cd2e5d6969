// A citizen and a moderator complete the Q&A flow over WebSockets through the proxy
// (docs/protocol.md is the contract): the citizen names herself and asks; the moderator sees
// the pending question, approves, queues and puts it on air; the citizen sees each step and
// upvotes; a refused command gets its stable code; the citizen drops her connection, the
// moderator answers the question meanwhile, and the citizen resumes by offset (through the
// proxy, perhaps on another node) and gets exactly what she missed.
//
//   node --experimental-websocket qa_client.mjs --base https://127.0.0.1:PORT \
//        --meeting ID --moderator-token TOKEN [--nodes http://127.0.0.1:A,http://127.0.0.1:B]
//
// With --nodes, it also reads each node's townhall_hub_connections while both are connected
// and prints where the two connections landed (with several nodes they must be on different
// nodes: the proxy balances by least connections). NODE_EXTRA_CA_CERTS names the proxy's CA.
// Prints one JSON line with what it saw; exit code 0 on success.

import { parseArgs } from 'node:util';

const WAIT_MS = Number(process.env.E2E_WAIT_MS || 20_000);

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    meeting: { type: 'string' },
    'moderator-token': { type: 'string' },
    nodes: { type: 'string', default: '' },
  },
});
for (const required of ['base', 'meeting', 'moderator-token']) {
  if (!args[required]) {
    console.error(`qa_client: --${required} is required`);
    process.exit(2);
  }
}
if (typeof WebSocket === 'undefined') {
  console.error('qa_client: no WebSocket in this Node (run it with --experimental-websocket on Node 20)');
  process.exit(2);
}

/** One participant's connection and its view of the meeting (a small ClientView). */
class Participant {
  constructor(name) {
    this.name = name;
    this.questions = new Map();
    this.meeting = null;
    this.last = 0;
    this.session = null;
    this.role = null;
    this.frames = [];
    this.pending = new Map();
    this.ref = 0;
    this.waiters = new Set();
  }

  /** Opens /ws and joins; resolves once the view is complete (snapshot or missed frames). */
  join(hello) {
    const url = `${args.base.replace(/^http/, 'ws')}/ws`;
    this.ws = new WebSocket(url);
    this.closed = false;
    this.ws.addEventListener('message', (e) => this.receive(JSON.parse(e.data)));
    this.ws.addEventListener('close', () => {
      this.closed = true;
      for (const { reject } of this.pending.values()) reject(new Error(`${this.name}: connection closed`));
      this.pending.clear();
      this.wake();
    });
    this.ws.addEventListener('error', () => {});
    this.ws.addEventListener('open', () => this.ws.send(JSON.stringify({ t: 'hello', meeting: args.meeting, ...hello })));
    return this.until('presence after joining', (f) => f.t === 'presence');
  }

  receive(f) {
    this.frames.push(f);
    switch (f.t) {
      case 'welcome':
        this.session = f.session;
        this.role = f.role;
        break;
      case 'snapshot':
        this.questions = new Map(f.questions.map((q) => [q.id, q]));
        this.meeting = f.meeting;
        this.last = f.offset;
        break;
      case 'snapshot_more':
        for (const q of f.questions || []) this.questions.set(q.id, q);
        break;
      case 'event':
        for (const q of f.questions || []) this.questions.set(q.id, q);
        if (f.meeting) this.meeting = f.meeting;
        this.last = Math.max(this.last, f.offset);
        break;
      case 'votes':
        for (const [id, n] of Object.entries(f.tallies || {})) {
          const q = this.questions.get(Number(id));
          if (q) q.votes = n;
        }
        this.last = Math.max(this.last, f.offset);
        break;
      case 'presence':
        this.last = Math.max(this.last, f.offset ?? 0);
        break;
      case 'ack':
      case 'error': {
        const p = this.pending.get(f.ref);
        if (p) {
          this.pending.delete(f.ref);
          p.resolve(f);
        } else if (f.t === 'error') {
          this.fail(new Error(`${this.name}: unexpected error frame ${JSON.stringify(f)}`));
        }
        break;
      }
      case 'bye':
        this.fail(new Error(`${this.name}: bye ${f.code}: ${f.message}`));
        break;
      default:
        break;
    }
    this.wake();
  }

  fail(error) {
    this.error = error;
  }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  /** Waits until `pred(frame)` holds for a frame received from now on. */
  until(what, pred) {
    const from = this.frames.length;
    return this.waitFor(what, () => this.frames.slice(from).find(pred));
  }

  /** Waits until `check()` returns something truthy; fails after WAIT_MS, naming `what`. */
  waitFor(what, check) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`${this.name}: timed out waiting for ${what}`)), WAIT_MS);
      const test = () => {
        if (this.error) return done(this.error);
        const value = check();
        if (value) return done(null, value);
        if (this.closed) return done(new Error(`${this.name}: connection closed while waiting for ${what}`));
        return undefined;
      };
      const done = (err, value) => {
        clearTimeout(timer);
        this.waiters.delete(test);
        if (err) reject(err);
        else resolve(value);
      };
      this.waiters.add(test);
      test();
    });
  }

  /** Sends a command; resolves with its ack or error frame. */
  send(cmd) {
    this.ref += 1;
    const ref = this.ref;
    const answer = new Promise((resolve, reject) => this.pending.set(ref, { resolve, reject }));
    this.ws.send(JSON.stringify({ t: 'cmd', ref, cmd }));
    return answer;
  }

  async ok(cmd) {
    const answer = await this.send(cmd);
    if (answer.t !== 'ack') throw new Error(`${this.name}: ${cmd.type} refused: ${JSON.stringify(answer)}`);
    return answer;
  }

  close() {
    this.ws.close();
    return this.waitFor('the connection to close', () => this.closed || null).catch(() => {});
  }

  question(id) {
    return this.questions.get(id);
  }
}

async function connectionsPerNode() {
  const nodes = args.nodes.split(',').filter(Boolean);
  const counts = [];
  for (const node of nodes) {
    const text = await (await fetch(`${node}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('townhall_hub_connections '));
    counts.push(Number(line?.split(' ')[1] ?? NaN));
  }
  return counts;
}

async function main() {
  const citizen = new Participant('citizen');
  const moderator = new Participant('moderator');
  await citizen.join({});
  await moderator.join({ token: args['moderator-token'] });
  if (citizen.role !== 'citizen' || moderator.role !== 'moderator') {
    throw new Error(`roles: citizen=${citizen.role} moderator=${moderator.role}`);
  }
  const perNode = args.nodes ? await connectionsPerNode() : [];
  if (perNode.length > 1 && perNode.filter((n) => n >= 1).length < 2) {
    throw new Error(`both connections on one node (townhall_hub_connections per node: ${perNode})`);
  }

  // The citizen asks; only she and the moderator see the pending question.
  await citizen.ok({ type: 'set_name', name: 'Karen Holm' });
  const asked = await citizen.ok({
    type: 'ask_question',
    text: 'Hvornår står den nye skole klar, og hvor skal børnene gå i skole imens?',
    anonymous: false,
  });
  const pending = await moderator.waitFor('the pending question', () =>
    [...moderator.questions.values()].find((q) => q.status === 'pending' && q.author_name === 'Karen Holm'));
  const id = pending.id;
  if (!citizen.question(id)?.mine) throw new Error('the citizen does not see her own question as mine');

  // The moderator approves, queues and puts it on air; the citizen sees each step.
  await moderator.ok({ type: 'approve_question', question: id });
  await citizen.waitFor('her question approved', () => citizen.question(id)?.status === 'approved');
  await citizen.ok({ type: 'upvote', question: id });
  await citizen.waitFor('the vote tally', () => citizen.question(id)?.votes === 1);
  const refused = await citizen.send({ type: 'upvote', question: id });
  if (refused.t !== 'error' || refused.code !== 'already_voted') {
    throw new Error(`second upvote: ${JSON.stringify(refused)}`);
  }
  await moderator.ok({ type: 'queue_question', question: id });
  await moderator.ok({ type: 'put_on_air', question: id });
  await citizen.waitFor('her question on air', () =>
    citizen.question(id)?.status === 'on_air' && citizen.meeting?.on_air === id);

  // The citizen drops; the moderator marks the question answered meanwhile; she comes back
  // through the proxy (any node) with `since` and her session, and gets what she missed.
  const since = citizen.last;
  const session = citizen.session;
  await citizen.close();
  const answered = await moderator.ok({ type: 'mark_answered', question: id });
  const back = new Participant('citizen (resumed)');
  await back.join({ since, session });
  const missed = back.frames.filter((f) => f.t === 'event').map((f) => f.offset);
  const snapshot = back.frames.some((f) => f.t === 'snapshot');
  if (back.frames[0]?.t !== 'welcome' || back.frames[0].participant !== citizen.frames[0].participant) {
    throw new Error(`resumed as someone else: ${JSON.stringify(back.frames[0])}`);
  }
  // A node that has the meeting's recent frames sends exactly the missed ones; one that
  // loaded it afresh (another node, or after a restart) sends a snapshot (protocol §8).
  if (!snapshot && !missed.includes(answered.offset)) {
    throw new Error(`resume from ${since} missed offset ${answered.offset}: got ${JSON.stringify(back.frames)}`);
  }
  await back.waitFor('the answered question after resuming', () => back.question(id)?.status === 'answered');

  // A comment from the citizen reaches the moderator.
  await back.ok({ type: 'post_comment', text: 'Tak for svaret!' });
  // (It may have arrived before the citizen's ack: look at every frame.)
  await moderator.waitFor('the comment', () => moderator.frames.find((f) => f.t === 'event' && f.kind === 'comment_posted'));

  await back.close();
  await moderator.close();
  console.log(JSON.stringify({
    ok: true,
    question: id,
    asked_offset: asked.offset,
    answered_offset: answered.offset,
    connections_per_node: perNode,
    resumed_with: snapshot ? 'snapshot' : `missed events ${missed.join(',')}`,
  }));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`qa_client FAILED: ${e.message}`);
    process.exit(1);
  },
);
