// The official JavaScript SDK (npm `centrifuge`) against a running ringcast.
// Env: RINGCAST_URL (wss://…/connection/websocket), RINGCAST_SECRET (HMAC), RINGCAST_KEYS (dir
// of test key pairs), NODE_EXTRA_CA_CERTS (the server's dev certificate).
// Prints "ok <scenario>" per scenario; exits 1 on the first failure.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';

const url = process.env.RINGCAST_URL;
const secret = process.env.RINGCAST_SECRET;
const keyDir = process.env.RINGCAST_KEYS;
const key = (name) => fs.readFileSync(path.join(keyDir, name));

const b64u = (b) => Buffer.from(b).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

function sign(alg, claims) {
  const data = `${b64u(JSON.stringify({ alg, typ: 'JWT' }))}.${b64u(JSON.stringify(claims))}`;
  const buf = Buffer.from(data);
  let sig;
  switch (alg) {
    case 'HS256': sig = crypto.createHmac('sha256', secret).update(data).digest(); break;
    case 'RS256': sig = crypto.sign('sha256', buf, key('rsa.key')); break;
    case 'ES256': sig = crypto.sign('sha256', buf, { key: key('ec.key'), dsaEncoding: 'ieee-p1363' }); break;
    case 'EdDSA': sig = crypto.sign(null, buf, key('ed.key')); break;
    default: throw new Error(alg);
  }
  return `${data}.${b64u(sig)}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function client(opts) {
  return new Centrifuge(url, {
    websocket: WebSocket,
    minReconnectDelay: 100,
    maxReconnectDelay: 500,
    timeout: 3000,
    ...opts,
  });
}

function withTimeout(p, ms, what) {
  return Promise.race([p, sleep(ms).then(() => { throw new Error(`timeout: ${what}`); })]);
}

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

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

const only = process.argv[2];
for (const [name, run] of Object.entries(scenarios)) {
  if (only && name !== only) continue;
  try {
    await withTimeout(run(), 20000, name);
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`FAILED ${name}: ${e && e.stack ? e.stack : JSON.stringify(e)}`);
    process.exit(1);
  }
}
process.exit(0);
