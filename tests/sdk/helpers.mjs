// What the SDK scenario scripts share: HS/RS/ES/EdDSA token signing, a client with short
// reconnect delays, timeouts and asserts.
// Env: RINGCAST_URL (wss://…/connection/websocket), RINGCAST_SECRET (HMAC), RINGCAST_KEYS (dir
// of test key pairs, for the public-key algorithms).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';

export const url = process.env.RINGCAST_URL;
const secret = process.env.RINGCAST_SECRET;
const keyDir = process.env.RINGCAST_KEYS;
const key = (name) => fs.readFileSync(path.join(keyDir, name));

const b64u = (b) => Buffer.from(b).toString('base64url');
export const now = () => Math.floor(Date.now() / 1000);

export function sign(alg, claims) {
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

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function client(opts) {
  return new Centrifuge(url, {
    websocket: WebSocket,
    minReconnectDelay: 100,
    maxReconnectDelay: 500,
    timeout: 3000,
    ...opts,
  });
}

export function withTimeout(p, ms, what) {
  return Promise.race([p, sleep(ms).then(() => { throw new Error(`timeout: ${what}`); })]);
}

export function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

/// Runs each scenario with a timeout, printing "ok NAME" or "FAILED NAME: …" (then exit 1).
export async function runAll(scenarios, ms) {
  for (const [name, run] of Object.entries(scenarios)) {
    try {
      await withTimeout(run(), ms, name);
      console.log(`ok ${name}`);
    } catch (e) {
      console.log(`FAILED ${name}: ${e && e.stack ? e.stack : JSON.stringify(e)}`);
      process.exit(1);
    }
  }
}
