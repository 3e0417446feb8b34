"""The server API judged by the real API client (PyPI `cent`), with centrifuge-python SDK
connections on the other side, and /metrics read by the real Prometheus text parser.

Env: RINGCAST_URL, RINGCAST_SECRET, RINGCAST_CA (as py_sdk.py), RINGCAST_API (http://host:port/api),
RINGCAST_API_KEY, RINGCAST_METRICS (http://host:port/metrics).
Prints "ok <scenario>" per scenario; exits 1 on the first failure.
"""
import asyncio
import os
import ssl
import time
import urllib.request

import jwt
import scenarios
from cent import (
    BroadcastRequest,
    ChannelsRequest,
    Client as Cent,
    CentApiResponseError,
    CentUnauthorizedError,
    Disconnect,
    DisconnectRequest,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    SubscribeRequest,
    UnsubscribeRequest,
)
from centrifuge import Client, ClientEventHandler, SubscriptionEventHandler
from prometheus_client.openmetrics.parser import text_string_to_metric_families

URL = os.environ["RINGCAST_URL"]
SECRET = os.environ["RINGCAST_SECRET"]
CTX = ssl.create_default_context(cafile=os.environ["RINGCAST_CA"])
API = Cent(os.environ["RINGCAST_API"], os.environ["RINGCAST_API_KEY"])
METRICS = os.environ["RINGCAST_METRICS"]


def token(user):
    return jwt.encode({"sub": user, "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")


async def api(request, client=API):
    # cent's public methods are named after the API method (publish, broadcast, …).
    return await asyncio.to_thread(getattr(client, request.__api_method__), request)


class Events(ClientEventHandler):
    def __init__(self):
        self.disconnected = asyncio.Queue()
        self.subscribed = asyncio.Queue()
        self.unsubscribed = asyncio.Queue()
        self.publications = asyncio.Queue()

    async def on_disconnected(self, ctx):
        await self.disconnected.put(ctx)

    async def on_subscribed(self, ctx):
        await self.subscribed.put(ctx)

    async def on_unsubscribed(self, ctx):
        await self.unsubscribed.put(ctx)

    async def on_publication(self, ctx):
        await self.publications.put(ctx)


class SubEvents(SubscriptionEventHandler):
    def __init__(self):
        self.publications = asyncio.Queue()

    async def on_publication(self, ctx):
        await self.publications.put(ctx)


async def connected(user):
    ev = Events()
    c = Client(URL, token=token(user), ssl_context=CTX, events=ev, proxy=None,
               min_reconnect_delay=0.1, max_reconnect_delay=0.5)
    await c.connect()
    await c.ready()
    return c, ev


async def subscribed(c, channel):
    ev = SubEvents()
    s = c.new_subscription(channel, events=ev)
    await s.subscribe()
    await s.ready()
    return s, ev


async def publish_broadcast_history_presence():
    a, _ = await connected("alice")
    b, _ = await connected("bob")
    _, a_ev = await subscribed(a, "feed:api")
    _, b_ev = await subscribed(b, "feed:api")
    _, b2_ev = await subscribed(b, "feed:other")
    r = await api(PublishRequest(channel="feed:api", data={"n": 1}))
    assert r.offset == 1 and r.epoch, r
    for ev in (a_ev, b_ev):
        p = await asyncio.wait_for(ev.publications.get(), 5)
        assert p.pub.data == {"n": 1} and p.pub.offset == 1, p
        assert p.pub.info is None, "API publications carry no publisher"
    r = await api(BroadcastRequest(channels=["feed:api", "feed:other"], data={"n": 2}))
    assert [x.result.offset for x in r.responses] == [2, 1], r
    assert (await asyncio.wait_for(b2_ev.publications.get(), 5)).pub.data == {"n": 2}
    assert (await asyncio.wait_for(a_ev.publications.get(), 5)).pub.data == {"n": 2}
    # The same idempotency key twice: published once.
    for _ in range(2):
        r = await api(PublishRequest(channel="feed:api", data={"n": 3}, idempotency_key="k-3"))
        assert r.offset == 3, r
    h = await api(HistoryRequest(channel="feed:api", limit=-1))
    assert [p.data["n"] for p in h.publications] == [1, 2, 3], h
    pr = await api(PresenceRequest(channel="feed:api"))
    assert sorted(i.user for i in pr.presence.values()) == ["alice", "bob"], pr
    ps = await api(PresenceStatsRequest(channel="feed:api"))
    assert ps.num_clients == 2 and ps.num_users == 2, ps
    ch = await api(ChannelsRequest(pattern="feed:*"))
    assert ch.channels["feed:api"].num_clients == 2 and ch.channels["feed:other"].num_clients == 1, ch
    info = await api(InfoRequest())
    n = info.nodes[0]
    assert n.num_clients >= 2 and n.num_subs >= 3 and n.version, n
    try:
        await api(PublishRequest(channel="nope:x", data={}))
        raise AssertionError("an unknown namespace must fail")
    except CentApiResponseError as e:
        assert e.code == 102, e
    await a.disconnect()
    await b.disconnect()


async def server_side_subscribe_unsubscribe():
    c, ev = await connected("carol")
    await api(SubscribeRequest(user="carol", channel="feed:srv"))
    s = await asyncio.wait_for(ev.subscribed.get(), 5)
    assert s.channel == "feed:srv", s
    await api(PublishRequest(channel="feed:srv", data={"hello": "carol"}))
    p = await asyncio.wait_for(ev.publications.get(), 5)
    assert p.channel == "feed:srv" and p.pub.data == {"hello": "carol"}, p
    await api(UnsubscribeRequest(user="carol", channel="feed:srv"))
    u = await asyncio.wait_for(ev.unsubscribed.get(), 5)
    assert u.channel == "feed:srv", u
    await c.disconnect()


async def disconnect_a_user_with_a_code():
    d, ev = await connected("dave")
    keep, keep_ev = await connected("erin")
    await api(DisconnectRequest(user="dave", disconnect=Disconnect(code=4501, reason="banned for a while")))
    ctx = await asyncio.wait_for(ev.disconnected.get(), 5)
    assert ctx.code == 4501 and ctx.reason == "banned for a while", ctx
    assert keep_ev.disconnected.empty(), "only that user"
    # An unknown user: fine, nobody disconnected.
    await api(DisconnectRequest(user="nobody"))
    await keep.disconnect()


async def wrong_key_is_unauthorized():
    bad = Cent(os.environ["RINGCAST_API"], "wrong-key")
    try:
        await api(PublishRequest(channel="feed:x", data={}), bad)
        raise AssertionError("a wrong key must be refused")
    except CentUnauthorizedError:
        pass


def scrape():
    text = urllib.request.urlopen(METRICS, timeout=5).read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return values


async def metrics_move():
    calls = ("ringcast_api_calls_total", (("method", "publish"), ("result", "ok")))
    before = (await asyncio.to_thread(scrape)).get(calls, 0)
    c, _ = await connected("frank")
    _, sev = await subscribed(c, "feed:m")
    for i in range(3):
        await api(PublishRequest(channel="feed:m", data={"i": i}))
    for _ in range(3):
        await asyncio.wait_for(sev.publications.get(), 5)
    m = await asyncio.to_thread(scrape)
    assert m[calls] == before + 3, (before, m.get(calls))
    assert m[("ringcast_connections", (("transport", "protocol"),))] >= 1, m
    assert m[("ringcast_subscriptions", ())] >= 1, m
    assert m[("ringcast_frames_out_total", ())] >= 3, m
    assert m[("ringcast_sends_total", ())] >= 1, m
    # Every send that started counted its wait (sends_total is read first, so never ahead).
    waits = m[("ringcast_send_wait_seconds_count", ())]
    assert waits >= m[("ringcast_sends_total", ())], m
    assert m[("ringcast_send_wait_seconds_bucket", (("le", "+Inf"),))] == waits, m
    assert m[("ringcast_send_wait_seconds_bucket", (("le", "2.5"),))] == waits, m
    # Every send that completed counted its time in the kernel.
    flights = m[("ringcast_send_flight_seconds_count", ())]
    assert flights >= 1 and m[("ringcast_send_flight_seconds_bucket", (("le", "+Inf"),))] == flights, m
    # The publish histogram's buckets end at its count (they were once accumulated twice).
    assert m[("ringcast_publish_enqueue_seconds_bucket", (("le", "+Inf"),))] == m[
        ("ringcast_publish_enqueue_seconds_count", ())
    ], m
    per_worker = [v for (name, _), v in m.items() if name == "ringcast_worker_connections"]
    assert per_worker and sum(per_worker) == sum(
        v for (name, _), v in m.items() if name == "ringcast_connections"
    ), m
    # Each worker's thread CPU time, read from the kernel (a worker that has run has used some).
    cpu = {labels: v for (name, labels), v in m.items() if name == "ringcast_worker_cpu_seconds_total"}
    workers = {labels for (name, labels), _ in m.items() if name == "ringcast_worker_connections"}
    assert set(cpu) == workers and all(v > 0 for v in cpu.values()), (cpu, workers)
    assert m[("ringcast_history_bytes", ())] > 0, m
    await c.disconnect()


SCENARIOS = [
    publish_broadcast_history_presence,
    server_side_subscribe_unsubscribe,
    disconnect_a_user_with_a_code,
    wrong_key_is_unauthorized,
    metrics_move,
]


scenarios.run(SCENARIOS, 30)
