"""permessage-deflate judged by Python `websockets` (compression on by default in its client):
the raw-room path and the client protocol path, both ways compressed, RSV1 seen on the wire.

Env: RINGCAST_WSS (wss://host:port), RINGCAST_SECRET, RINGCAST_CA, RINGCAST_METRICS.
Prints "ok <scenario>" per scenario; exits 1 on the first failure.
"""
import asyncio
import json
import os
import ssl
import time

import checks
import jwt
from checks import check
import websockets
from websockets.extensions.permessage_deflate import PerMessageDeflate

WSS = os.environ["RINGCAST_WSS"]
SECRET = os.environ["RINGCAST_SECRET"]
CTX = ssl.create_default_context(cafile=os.environ["RINGCAST_CA"])
METRICS = os.environ["RINGCAST_METRICS"]

# Every frame the extension decodes, with its RSV1 bit: proof the server's frames were compressed.
RSV1_SEEN = []
_decode = PerMessageDeflate.decode


def _recording_decode(self, frame, *, max_size=None):
    RSV1_SEEN.append(frame.rsv1)
    return _decode(self, frame, max_size=max_size)


PerMessageDeflate.decode = _recording_decode

# A 2 KiB JSON chat message, the kind of payload compression is for.
BIG = json.dumps({"type": "message", "text": "the quick brown fox jumps over the lazy dog " * 46})


def metric(name):
    return checks.metric(METRICS, name)


def token(user):
    return jwt.encode({"sub": user, "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")


async def raw_room():
    url = WSS + "/deflate-room"
    auth = {"Authorization": "Bearer " + token("yann")}
    async with websockets.connect(url, ssl=CTX, additional_headers=auth) as a, websockets.connect(
        url, ssl=CTX, additional_headers=auth
    ) as b:
        ext = a.response.headers.get("Sec-WebSocket-Extensions", "")
        check(
            ext.startswith("permessage-deflate")
            and "server_no_context_takeover" in ext
            and "client_no_context_takeover" in ext,
            f"the 101 agrees to permessage-deflate on our terms: {ext!r}",
        )
        before = len([r for r in RSV1_SEEN if r])
        await a.send(BIG)
        for ws in (a, b):
            got = await asyncio.wait_for(ws.recv(), 5)
            check(got == BIG, "the broadcast arrives intact on both connections")
        check(len([r for r in RSV1_SEEN if r]) >= before + 2, f"frames carried RSV1: {RSV1_SEEN}")
        await a.send("small")  # under --compression-min-size: sent plain
        check(await asyncio.wait_for(b.recv(), 5) == "small", "a small message arrives")
        check(RSV1_SEEN[-1] is False, "a small message is sent without RSV1")
    print("ok raw_room_compressed_both_ways")


async def client_protocol():
    async with websockets.connect(WSS + "/connection/websocket", ssl=CTX) as ws:
        await ws.send(json.dumps({"id": 1, "connect": {"token": token("zoe")}}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        check("connect" in reply, f"connected: {reply}")
        await ws.send(json.dumps({"id": 2, "subscribe": {"channel": "chat:deflate"}}))
        check(json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"id": 2, "subscribe": {}}, "subscribed")
        data = json.loads(BIG)
        await ws.send(json.dumps({"id": 3, "publish": {"channel": "chat:deflate", "data": data}}))
        got = []
        while len(got) < 2:
            for line in (await asyncio.wait_for(ws.recv(), 5)).split("\n"):
                got.append(json.loads(line))
        push = next(m for m in got if "push" in m)
        check(push["push"]["pub"]["data"] == data, "the publication comes back intact")
        check(any(m.get("id") == 3 for m in got), "the publish is answered")
    print("ok client_protocol_compressed")


async def main():
    await raw_room()
    await client_protocol()
    check(metric("ringcast_deflate_messages_compressed_total") >= 2, "compressions counted")
    check(metric("ringcast_deflate_messages_inflated_total") >= 2, "inflations counted")
    before = metric("ringcast_deflate_bytes_before_total")
    after = metric("ringcast_deflate_bytes_after_total")
    check(after < before / 4, f"2 KiB of repetitive JSON shrinks: {before} -> {after}")
    print("ok metrics")


asyncio.run(main())
