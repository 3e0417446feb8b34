"""The official Python SDK (PyPI centrifuge-python) against a running ringcast.

Env: RINGCAST_URL, RINGCAST_SECRET, RINGCAST_KEYS, RINGCAST_CA (the server's dev certificate).
Prints "ok <scenario>" per scenario; exits 1 on the first failure.
"""
import asyncio
import os
import ssl
import time

import jwt
import scenarios
from centrifuge import (
    Client,
    ClientEventHandler,
    ReplyError,
    SubscriptionEventHandler,
)

URL = os.environ["RINGCAST_URL"]
SECRET = os.environ["RINGCAST_SECRET"]
KEYS = os.environ["RINGCAST_KEYS"]
CTX = ssl.create_default_context(cafile=os.environ["RINGCAST_CA"])


def key(name):
    with open(os.path.join(KEYS, name), "rb") as f:
        return f.read()


def token(alg, **claims):
    k = {"HS256": SECRET, "RS256": key("rsa.key"), "ES256": key("ec.key"), "EdDSA": key("ed.key")}[alg]
    return jwt.encode(claims, k, algorithm=alg)


def client(**kw):
    return Client(URL, ssl_context=CTX, min_reconnect_delay=0.1, max_reconnect_delay=0.5, proxy=None, **kw)


class Events(ClientEventHandler):
    def __init__(self):
        self.disconnected = asyncio.Queue()
        self.connecting = 0

    async def on_connecting(self, ctx):
        self.connecting += 1

    async def on_disconnected(self, ctx):
        await self.disconnected.put(ctx)


class SubEvents(SubscriptionEventHandler):
    def __init__(self):
        self.publications = asyncio.Queue()

    async def on_publication(self, ctx):
        await self.publications.put(ctx)


async def connect_with_hs256_and_eddsa():
    for alg in ("HS256", "EdDSA", "RS256"):
        c = client(token=token(alg, sub=f"py-{alg}", exp=int(time.time()) + 60))
        await c.connect()
        await c.ready(timeout=5)
        await c.disconnect()


async def subscribe_and_receive_from_another_client():
    a = client(token=token("HS256", sub="pa", exp=int(time.time()) + 60))
    b = client(token=token("ES256", sub="pb", exp=int(time.time()) + 60))
    await a.connect()
    await b.connect()
    ev = SubEvents()
    sa = a.new_subscription("chat:py", events=ev)
    sb = b.new_subscription("chat:py")
    await sa.subscribe()
    await sb.subscribe()
    await sa.ready(timeout=5)
    await sb.ready(timeout=5)
    await sb.publish({"text": "from python"})
    ctx = await asyncio.wait_for(ev.publications.get(), 5)
    assert ctx.pub.data == {"text": "from python"}, ctx.pub.data
    assert ctx.pub.info.user == "pb", ctx.pub.info
    await a.disconnect()
    await b.disconnect()


async def expired_token_calls_get_token():
    calls = []

    async def get_token():
        calls.append(1)
        return token("HS256", sub="pc", exp=int(time.time()) + 60)

    c = client(token=token("HS256", sub="pc", exp=int(time.time()) - 10), get_token=get_token)
    await c.connect()
    await c.ready(timeout=5)
    assert calls, "get_token was called"
    await c.disconnect()


async def publish_without_permission_is_103():
    c = client(token=token("HS256", sub="pd", exp=int(time.time()) + 60))
    await c.connect()
    s = c.new_subscription("news:py")
    await s.subscribe()
    await s.ready(timeout=5)
    try:
        await s.publish({"x": 1})
        raise AssertionError("publish succeeded")
    except ReplyError as e:
        assert e.code == 103, e
    await c.disconnect()


async def refused_token_is_3500_without_reconnect():
    ev = Events()
    c = client(token="not-a-token", events=ev)
    await c.connect()
    ctx = await asyncio.wait_for(ev.disconnected.get(), 5)
    assert ctx.code == 3500, (ctx.code, ctx.reason)
    before = ev.connecting
    await asyncio.sleep(1.0)
    assert ev.connecting == before, "no reconnect"
    await c.disconnect()


async def private_channel_with_subscription_token():
    async def sub_token(channel):
        return token("HS256", sub="pe", channel=channel, exp=int(time.time()) + 60)

    c = client(token=token("HS256", sub="pe", exp=int(time.time()) + 60))
    await c.connect()
    s = c.new_subscription("$chat:py", get_token=sub_token)
    await s.subscribe()
    await s.ready(timeout=5)
    await c.disconnect()


class RecEvents(SubscriptionEventHandler):
    def __init__(self):
        self.data = []
        self.subscribed = []

    async def on_publication(self, ctx):
        self.data.append(ctx.pub.data["n"])

    async def on_subscribed(self, ctx):
        self.subscribed.append(ctx)


async def recovers_what_it_missed_and_reads_history():
    w = client(token=token("HS256", sub="py-w", exp=int(time.time()) + 60))
    r = client(token=token("HS256", sub="py-r", exp=int(time.time()) + 60))
    await w.connect()
    await r.connect()
    ws = w.new_subscription("feed:py")
    ev = RecEvents()
    rs = r.new_subscription("feed:py", events=ev)
    await ws.subscribe()
    await rs.subscribe()
    await ws.ready(timeout=5)
    await rs.ready(timeout=5)
    for n in range(1, 6):
        await ws.publish({"n": n})
    for _ in range(100):
        if len(ev.data) == 5:
            break
        await asyncio.sleep(0.02)
    assert ev.data == [1, 2, 3, 4, 5], ev.data
    await r.disconnect()
    for n in range(6, 21):
        await ws.publish({"n": n})
    await r.connect()
    for _ in range(200):
        if len(ev.data) == 20 and len(ev.subscribed) >= 2:
            break
        await asyncio.sleep(0.02)
    again = ev.subscribed[-1]
    assert again.was_recovering and again.recovered, again
    assert ev.data == list(range(1, 21)), ev.data
    h = await rs.history(limit=3, reverse=True)
    assert [p.data["n"] for p in h.publications] == [20, 19, 18], h
    stats = await rs.presence_stats()
    assert stats.num_clients == 2 and stats.num_users == 2, stats
    await w.disconnect()
    await r.disconnect()


SCENARIOS = [
    recovers_what_it_missed_and_reads_history,
    connect_with_hs256_and_eddsa,
    subscribe_and_receive_from_another_client,
    expired_token_calls_get_token,
    publish_without_permission_is_103,
    refused_token_is_3500_without_reconnect,
    private_channel_with_subscription_token,
]


scenarios.run(SCENARIOS, 20)
