// The official JavaScript SDK (npm `centrifuge`) against a running ringcast.
// Env: RINGCAST_URL (wss://…/connection/websocket), RINGCAST_SECRET (HMAC), RINGCAST_KEYS (dir
// of test key pairs), NODE_EXTRA_CA_CERTS (the server's dev certificate).
// Prints "ok <scenario>" per scenario; exits 1 on the first failure.
import { assert, client, now, runAll, sign, sleep, withTimeout } from './helpers.mjs';

const scenarios = {
  async connect_with_every_algorithm() {
    for (const alg of ['HS256', 'RS256', 'ES256', 'EdDSA']) {
      const c = client({ token: sign(alg, { sub: `user-${alg}`, exp: now() + 60 }) });
      const connected = new Promise((res) => c.on('connected', res));
      c.connect();
      const ctx = await withTimeout(connected, 5000, `connect ${alg}`);
      assert(ctx.client, `${alg}: a client id`);
      c.disconnect();
    }
  },

  async subscribe_and_receive_from_another_client() {
    const a = client({ token: sign('HS256', { sub: 'alice', exp: now() + 60 }) });
    const b = client({ token: sign('ES256', { sub: 'bob', exp: now() + 60 }) });
    a.connect(); b.connect();
    await withTimeout(Promise.all([a.ready(), b.ready()]), 5000, 'ready');
    const sa = a.newSubscription('chat:sdk');
    const sb = b.newSubscription('chat:sdk');
    const got = new Promise((res) => sa.on('publication', res));
    sa.subscribe(); sb.subscribe();
    await withTimeout(Promise.all([sa.ready(), sb.ready()]), 5000, 'subscribed');
    await sb.publish({ text: 'hello from bob' });
    const ctx = await withTimeout(got, 5000, 'publication');
    assert(ctx.data.text === 'hello from bob', JSON.stringify(ctx.data));
    assert(ctx.info && ctx.info.user === 'bob', `publisher info: ${JSON.stringify(ctx.info)}`);
    a.disconnect(); b.disconnect();
  },

  async expired_token_makes_the_sdk_fetch_a_new_one() {
    let calls = 0;
    const c = client({
      token: sign('HS256', { sub: 'carol', exp: now() - 10 }),
      getToken: async () => { calls += 1; return sign('HS256', { sub: 'carol', exp: now() + 60 }); },
    });
    const connected = new Promise((res) => c.on('connected', res));
    c.connect();
    await withTimeout(connected, 5000, 'connect after getToken');
    assert(calls >= 1, 'getToken was called');
    c.disconnect();
  },

  async token_is_refreshed_on_the_same_connection() {
    let calls = 0;
    let disconnects = 0;
    const c = client({
      token: sign('HS256', { sub: 'dave', exp: now() + 2 }),
      getToken: async () => { calls += 1; return sign('HS256', { sub: 'dave', exp: now() + 2 }); },
    });
    const connected = new Promise((res) => c.on('connected', res));
    c.on('disconnected', () => { disconnects += 1; });
    c.on('connecting', (ctx) => { if (ctx.code !== 0) disconnects += 1; });
    c.connect();
    const first = await withTimeout(connected, 5000, 'connect');
    await sleep(5500);
    assert(calls >= 2, `getToken called for refreshes: ${calls}`);
    assert(disconnects === 0, 'no reconnect');
    assert(c.state === 'connected', c.state);
    // The same connection: the server still knows this client id.
    assert(c._client === first.client, `client id unchanged: ${c._client} vs ${first.client}`);
    c.disconnect();
  },

  async refused_token_ends_with_3500_and_no_reconnect() {
    const c = client({ token: 'not-a-token' });
    let connecting = 0;
    const disconnected = new Promise((res) => c.on('disconnected', res));
    c.on('connecting', () => { connecting += 1; });
    c.connect();
    const ctx = await withTimeout(disconnected, 5000, 'disconnected');
    assert(ctx.code === 3500, `code ${ctx.code} ${ctx.reason}`);
    const before = connecting;
    await sleep(1500);
    assert(connecting === before, 'no reconnect attempt');
    assert(c.state === 'disconnected', c.state);
  },

  async publish_without_permission_is_103() {
    const c = client({ token: sign('HS256', { sub: 'erin', exp: now() + 60 }) });
    c.connect();
    await withTimeout(c.ready(), 5000, 'ready');
    const s = c.newSubscription('news:sdk');
    s.subscribe();
    await withTimeout(s.ready(), 5000, 'subscribed');
    let code = null;
    try { await s.publish({ x: 1 }); } catch (e) { code = e.code; }
    assert(code === 103, `publish error code ${code}`);
    c.disconnect();
  },
};

/// Channel engine scenarios (namespace `feed`: history, recovery, presence, join/leave).
const engineScenarios = {
  async two_publishers_four_subscribers_one_order() {
    const subs = [];
    const seen = [[], [], [], []];
    for (let k = 0; k < 4; k++) {
      const c = client({ token: sign('HS256', { sub: `reader-${k}`, exp: now() + 120 }) });
      c.connect();
      const s = c.newSubscription('feed:order');
      s.on('publication', (ctx) => seen[k].push([ctx.data.p, ctx.data.i, ctx.offset]));
      s.subscribe();
      subs.push([c, s]);
    }
    await withTimeout(Promise.all(subs.map(([, s]) => s.ready())), 5000, 'subscribers ready');
    const pubs = [];
    for (const p of ['a', 'b']) {
      const c = client({ token: sign('HS256', { sub: `writer-${p}`, exp: now() + 120 }) });
      c.connect();
      const s = c.newSubscription('feed:order');
      s.subscribe();
      pubs.push([p, c, s]);
    }
    await withTimeout(Promise.all(pubs.map(([, , s]) => s.ready())), 5000, 'publishers ready');
    // Both publishers at once, each keeping 20 publishes in flight.
    await Promise.all(pubs.map(async ([p, , s]) => {
      for (let i = 0; i < 500; i += 20) {
        const batch = [];
        for (let j = i; j < i + 20; j++) batch.push(s.publish({ p, i: j }));
        await Promise.all(batch);
      }
    }));
    const deadline = Date.now() + 10000;
    while (seen.some((l) => l.length < 1000) && Date.now() < deadline) await sleep(50);
    for (let k = 0; k < 4; k++) {
      assert(seen[k].length === 1000, `reader ${k} saw ${seen[k].length}`);
      assert(JSON.stringify(seen[k]) === JSON.stringify(seen[0]), `reader ${k} saw another order`);
    }
    const offsets = seen[0].map((x) => x[2]);
    for (let n = 1; n < offsets.length; n++) {
      assert(offsets[n] === offsets[n - 1] + 1, `offsets contiguous at ${n}: ${offsets[n - 1]} → ${offsets[n]}`);
    }
    for (const p of ['a', 'b']) {
      const mine = seen[0].filter((x) => x[0] === p).map((x) => x[1]);
      assert(mine.length === 500 && mine.every((v, n) => v === n), `publisher ${p} in its own order`);
    }
    for (const [c] of subs) c.disconnect();
    for (const [, c] of pubs) c.disconnect();
  },

  async reconnecting_subscriber_recovers_exactly_what_it_missed() {
    const w = client({ token: sign('HS256', { sub: 'rec-writer', exp: now() + 120 }) });
    w.connect();
    const ws = w.newSubscription('feed:recover');
    ws.subscribe();
    const r = client({ token: sign('HS256', { sub: 'rec-reader', exp: now() + 120 }) });
    r.connect();
    const rs = r.newSubscription('feed:recover');
    const got = [];
    const subscribedCtx = [];
    rs.on('publication', (ctx) => got.push(ctx.data.n));
    rs.on('subscribed', (ctx) => subscribedCtx.push(ctx));
    rs.subscribe();
    await withTimeout(Promise.all([ws.ready(), rs.ready()]), 5000, 'ready');
    for (let n = 1; n <= 10; n++) await ws.publish({ n });
    const deadline = Date.now() + 5000;
    while (got.length < 10 && Date.now() < deadline) await sleep(20);
    assert(got.length === 10, `before the drop: ${got.length}`);
    r.disconnect();
    for (let n = 11; n <= 60; n++) await ws.publish({ n });
    r.connect();
    const d2 = Date.now() + 5000;
    while (got.length < 60 && Date.now() < d2) await sleep(20);
    const again = subscribedCtx[subscribedCtx.length - 1];
    assert(subscribedCtx.length === 2, `subscribed twice: ${subscribedCtx.length}`);
    assert(again.wasRecovering === true && again.recovered === true, `recovered: ${JSON.stringify(again)}`);
    assert(JSON.stringify(got.slice(10)) === JSON.stringify([...Array(50).keys()].map((k) => k + 11)),
      `exactly the 50 missed: ${JSON.stringify(got.slice(10))}`);
    r.disconnect(); w.disconnect();
  },

  async presence_stats_and_join_leave() {
    const joins = [];
    const leaves = [];
    const clients = [];
    for (const u of ['pa', 'pa', 'pb']) {
      const c = client({ token: sign('HS256', { sub: u, exp: now() + 120, info: { name: u } }) });
      c.connect();
      const s = c.newSubscription('feed:presence', { joinLeave: true });
      s.on('join', (ctx) => joins.push(ctx.info.user));
      s.on('leave', (ctx) => leaves.push(ctx.info.user));
      s.subscribe();
      await withTimeout(s.ready(), 5000, 'subscribed');
      clients.push([c, s]);
    }
    const [, s0] = clients[0];
    const stats = await s0.presenceStats();
    assert(stats.numClients === 3 && stats.numUsers === 2, `stats ${JSON.stringify(stats)}`);
    const pres = await s0.presence();
    const users = Object.values(pres.clients).map((i) => i.user).sort();
    assert(JSON.stringify(users) === '["pa","pa","pb"]', `presence ${JSON.stringify(pres)}`);
    assert(Object.values(pres.clients).some((i) => i.connInfo && i.connInfo.name === 'pb'), 'conn_info carried');
    clients[2][0].disconnect();
    const deadline = Date.now() + 5000;
    while (!leaves.includes('pb') && Date.now() < deadline) await sleep(20);
    assert(leaves.includes('pb'), `leave seen: ${JSON.stringify(leaves)}`);
    assert(joins.includes('pb'), `join seen: ${JSON.stringify(joins)}`);
    const after = await s0.presenceStats();
    assert(after.numClients === 2 && after.numUsers === 1, `after leave ${JSON.stringify(after)}`);
    for (const [c] of clients) c.disconnect();
  },
};

/// Needs the test harness: prints RESTART, waits for a line on stdin once the server runs again.
async function restart_means_a_new_epoch() {
  const w = client({ token: sign('HS256', { sub: 'ep-writer', exp: now() + 120 }) });
  w.connect();
  const ws = w.newSubscription('feed:epoch');
  ws.subscribe();
  const r = client({ token: sign('HS256', { sub: 'ep-reader', exp: now() + 120 }) });
  r.connect();
  const rs = r.newSubscription('feed:epoch');
  const ctxs = [];
  rs.on('subscribed', (ctx) => ctxs.push(ctx));
  rs.subscribe();
  await withTimeout(Promise.all([ws.ready(), rs.ready()]), 5000, 'ready');
  await ws.publish({ n: 1 });
  await sleep(200);
  const line = new Promise((res) => process.stdin.once('data', res));
  console.log('RESTART');
  await line;
  const deadline = Date.now() + 15000;
  while (ctxs.length < 2 && Date.now() < deadline) await sleep(50);
  const again = ctxs[ctxs.length - 1];
  assert(ctxs.length >= 2, 'resubscribed after the restart');
  assert(again.wasRecovering === true && again.recovered === false, `not recovered: ${JSON.stringify(again)}`);
  w.disconnect(); r.disconnect();
}

const only = process.argv[2];
if (only === 'engine') {
  await runAll(engineScenarios, 30000);
  process.exit(0);
}
if (only === 'restart') {
  try {
    await withTimeout(restart_means_a_new_epoch(), 30000, 'restart');
    console.log('ok restart_means_a_new_epoch');
    process.exit(0);
  } catch (e) {
    console.log(`FAILED restart_means_a_new_epoch: ${e && e.stack ? e.stack : JSON.stringify(e)}`);
    process.exit(1);
  }
}
await runAll(
  Object.fromEntries(Object.entries(scenarios).filter(([name]) => !only || name === only)),
  20000,
);
process.exit(0);
