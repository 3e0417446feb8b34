// Chat judged by the official JavaScript SDK (npm `centrifuge`), on the chat configuration of
// deploy/chat-dev.toml: roles, a mute that ends, a ban at every worker, reactions, mentions, DMs.
// Env: as helpers.mjs, NODE_EXTRA_CA_CERTS (the server's dev certificate).
// Prints "ok <scenario>" per scenario; exits 1 on the first failure.
import { assert, client, now, runAll, sign, sleep, withTimeout } from './helpers.mjs';

const token = (sub, roles = ['user']) => sign('HS256', { sub, roles, exp: now() + 300 });

async function connected(sub, roles) {
  const c = client(sub === null ? {} : { token: token(sub, roles) });
  const ctx = new Promise((res) => c.once('connected', res));
  c.connect();
  return { c, ctx: await withTimeout(ctx, 5000, `connect ${sub}`) };
}

async function subscribed(c, channel) {
  const s = c.newSubscription(channel);
  const pubs = [];
  s.on('publication', (p) => pubs.push(p));
  s.subscribe();
  await withTimeout(s.ready(), 5000, `subscribe ${channel}`);
  return { s, pubs };
}

async function refused(p, code, words) {
  try {
    await p;
  } catch (e) {
    assert(e.code === code, `code ${code}, got ${JSON.stringify(e)}`);
    assert(e.message.includes(words), `"${words}" in ${JSON.stringify(e.message)}`);
    return e;
  }
  throw new Error(`expected error ${code}`);
}

const say = (s, text) => s.publish({ type: 'message', text });

/** The worker a client id was given by: its third group (`4www`). */
const worker = (clientId) => clientId.split('-')[2].slice(1);

/** Waits until `pubs` holds one matching `pred`. */
async function seen(pubs, pred, what) {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const p = pubs.find(pred);
    if (p) return p;
    await sleep(20);
  }
  throw new Error(`not seen: ${what}`);
}

const scenarios = {
  async a_guest_reads_but_cannot_publish() {
    const { c } = await connected(null);
    const { s } = await subscribed(c, 'room:lobby');
    await refused(say(s, 'hi'), 103, 'publish is not allowed for the guest role');
    c.disconnect();
  },

  async a_moderator_mutes_a_user_until_the_mute_ends() {
    const bob = await connected('bob-m');
    const mia = await connected('mia-m', ['moderator']);
    const { s } = await subscribed(bob.c, 'room:mute');
    await say(s, 'before');
    await refused(bob.c.rpc('mod.mute', { user: 'mia-m', global: true }), 103, 'mute is not allowed for the user role');
    const r = await mia.c.rpc('mod.mute', { user: 'bob-m', channel: 'room:mute', duration: '2s', reason: 'cool down' });
    assert(r.data.record.action === 'mute' && r.data.record.until > Date.now(), JSON.stringify(r.data));
    const e = await refused(say(s, 'during'), 103, 'you are muted until');
    assert(e.message.includes('cool down'), e.message);
    await sleep(2100);
    await say(s, 'after');
    const h = await mia.c.rpc('mod.history', { user: 'bob-m' });
    assert(h.data.records.length === 1 && h.data.records[0].by === 'mia-m', JSON.stringify(h.data));
    bob.c.disconnect(); mia.c.disconnect();
  },

  async a_ban_closes_every_connection_on_every_worker_and_refuses_reconnects() {
    const eve = [];
    const workers = new Set();
    while (workers.size < 2 && eve.length < 24) {
      const e = await connected('eve');
      e.closed = new Promise((res) => e.c.once('disconnected', res));
      workers.add(worker(e.ctx.client));
      eve.push(e);
    }
    assert(workers.size === 2, `eve's connections reached both workers (${eve.length} tried)`);
    const ada = await connected('ada', ['admin']);
    await ada.c.rpc('mod.ban', { user: 'eve', global: true, duration: '1h', reason: 'spam' });
    const codes = await withTimeout(Promise.all(eve.map((e) => e.closed)), 5000, 'every eve closed');
    for (const d of codes) {
      assert(d.code === 4501 && d.reason.includes('spam') && d.reason.includes('until'), JSON.stringify(d));
    }
    const again = client({ token: token('eve') });
    const closed = new Promise((res) => again.once('disconnected', res));
    again.connect();
    const d = await withTimeout(closed, 5000, 'reconnect refused');
    assert(d.code === 4501, `a banned user's connect is refused: ${JSON.stringify(d)}`);
    await ada.c.rpc('mod.unban', { user: 'eve', global: true });
    const back = await connected('eve');
    back.c.disconnect(); ada.c.disconnect();
  },

  async a_backend_bans_and_reads_history_through_the_server_api() {
    const api = async (method, params) => {
      const r = await fetch(`${process.env.RINGCAST_API}/api/rpc`, {
        method: 'POST', body: JSON.stringify({ method, params }),
      });
      return r.json();
    };
    const vic = await connected('vic');
    const closed = new Promise((res) => vic.c.once('disconnected', res));
    const r = await api('mod.ban', { user: 'vic', global: true, duration: 60, reason: 'chargeback' });
    assert(r.result.data.record.by === 'api' && r.result.data.record.action === 'ban', JSON.stringify(r));
    const d = await withTimeout(closed, 5000, 'vic closed');
    assert(d.code === 4501 && d.reason.includes('chargeback'), JSON.stringify(d));
    const h = await api('mod.history', { user: 'vic' });
    assert(h.result.data.records.length === 1, JSON.stringify(h));
    const metrics = await (await fetch(`${process.env.RINGCAST_API}/metrics`)).text();
    const value = (line) => Number((metrics.split('\n').find((l) => l.startsWith(line)) || ' -1').split(' ').pop());
    assert(value('ringcast_chat_sanctions{kind="ban"}') >= 1, 'the live ban in /metrics');
    assert(value('ringcast_chat_moderation_actions_total{action="ban"}') >= 1, 'bans counted in /metrics');
    const bad = await api('mod.fly', {});
    assert(bad.error && bad.error.code === 104, JSON.stringify(bad));
    await api('mod.unban', { user: 'vic', global: true });
    (await connected('vic')).c.disconnect();
  },

  async reactions_are_counted_once_per_user() {
    const alice = await connected('alice-r');
    const bob = await connected('bob-r');
    const a = await subscribed(alice.c, 'room:react');
    await subscribed(bob.c, 'room:react');
    await say(a.s, 'vote here');
    const msg = await seen(a.pubs, (p) => p.data.type === 'message', 'the message');
    const add = { channel: 'room:react', offset: msg.offset, emoji: '👍' };
    let r = await bob.c.rpc('reaction.add', add);
    assert(r.data.count === 1 && r.data.changed === true, JSON.stringify(r.data));
    r = await bob.c.rpc('reaction.add', add);
    assert(r.data.count === 1 && r.data.changed === false, `twice counts once: ${JSON.stringify(r.data)}`);
    r = await alice.c.rpc('reaction.add', add);
    assert(r.data.count === 2, JSON.stringify(r.data));
    await seen(a.pubs, (p) => p.data.type === 'reaction' && p.data.count === 2, 'the reaction event');
    const events = a.pubs.filter((p) => p.data.type === 'reaction');
    assert(events.length === 2, `one event per change: ${JSON.stringify(events.map((p) => p.data))}`);
    const list = await bob.c.rpc('reaction.list', { channel: 'room:react', offsets: [msg.offset] });
    assert(list.data.reactions[msg.offset].counts['👍'] === 2, JSON.stringify(list.data));
    alice.c.disconnect(); bob.c.disconnect();
  },

  async a_mention_reaches_who_may_read_the_room_and_not_others() {
    const alice = await connected('alice-n');
    const carol = await connected('carol-n');
    const told = [];
    carol.c.on('publication', (p) => told.push(p)); // server-side: carol's personal channel
    const room = await subscribed(alice.c, 'room:mentions');
    await say(room.s, 'ping @carol-n');
    const n = await seen(told, (p) => p.data.type === 'mention', 'the mention notification');
    assert(n.channel === 'personal:#carol-n' && n.data.channel === 'room:mentions' && n.data.from === 'alice-n',
      JSON.stringify(n));
    const dm = await alice.c.rpc('dm.open', { user: 'bob-n' });
    const d = await subscribed(alice.c, dm.data.channel);
    await say(d.s, 'between us, @carol-n');
    await sleep(300);
    assert(told.filter((p) => p.data.type === 'mention').length === 1, 'no mention from a DM carol may not read');
    alice.c.disconnect(); carol.c.disconnect();
  },

  async a_dm_channel_refuses_a_third_user() {
    const alice = await connected('alice-d');
    const bob = await connected('bob-d');
    const carol = await connected('carol-d');
    const bobTold = [];
    bob.c.on('publication', (p) => bobTold.push(p));
    const { data } = await alice.c.rpc('dm.open', { user: 'bob-d' });
    assert(data.channel === 'dm:#alice-d,bob-d', JSON.stringify(data));
    const a = await subscribed(alice.c, data.channel);
    await say(a.s, 'hello bob');
    const note = await seen(bobTold, (p) => p.data.type === 'dm', 'the DM notification');
    assert(note.data.channel === data.channel && note.data.text === 'hello bob', JSON.stringify(note.data));
    const b = await subscribed(bob.c, data.channel);
    const hist = await b.s.history({ limit: 10 });
    assert(hist.publications.length === 1, 'bob reads the DM history');
    const s = carol.c.newSubscription(data.channel);
    // A permanent subscribe error: the SDK reports it as `unsubscribed` with the error's code.
    const gone = new Promise((res) => s.once('unsubscribed', res));
    s.subscribe();
    const e = await withTimeout(gone, 5000, 'carol refused');
    assert(e.code === 103, `a third user: ${JSON.stringify(e)}`);
    alice.c.disconnect(); bob.c.disconnect(); carol.c.disconnect();
  },
};

await runAll(scenarios, 20000);
process.exit(0);
