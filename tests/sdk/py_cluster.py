"""A centrifuge-python client for the cluster test: connects (user RINGCAST_USER) and prints one
JSON line per event it sees — "ready" first, then server-side subscriptions, their
publications, unsubscriptions and the disconnect — until it is disconnected or RINGCAST_WAIT
seconds pass.

Env: RINGCAST_URL, RINGCAST_SECRET, RINGCAST_CA, RINGCAST_USER, RINGCAST_WAIT.
"""
import asyncio
import json
import os
import ssl
import time

import jwt
from centrifuge import Client, ClientEventHandler


def say(**event):
    print(json.dumps(event), flush=True)


class Events(ClientEventHandler):
    def __init__(self):
        self.done = asyncio.Event()

    async def on_connected(self, ctx):
        say(event="ready")

    async def on_subscribed(self, ctx):
        say(event="subscribed", channel=ctx.channel)

    async def on_publication(self, ctx):
        say(event="publication", channel=ctx.channel, n=ctx.pub.data["n"])

    async def on_unsubscribed(self, ctx):
        say(event="unsubscribed", channel=ctx.channel)

    async def on_disconnected(self, ctx):
        say(event="disconnected", code=ctx.code, reason=ctx.reason)
        self.done.set()


async def main():
    ctx = ssl.create_default_context(cafile=os.environ["RINGCAST_CA"])
    tok = jwt.encode({"sub": os.environ["RINGCAST_USER"], "exp": int(time.time()) + 3600},
                     os.environ["RINGCAST_SECRET"], algorithm="HS256")
    events = Events()
    c = Client(os.environ["RINGCAST_URL"], token=tok, ssl_context=ctx, proxy=None,
               events=events)
    await c.connect()
    try:
        await asyncio.wait_for(events.done.wait(), float(os.environ.get("RINGCAST_WAIT", "30")))
    except asyncio.TimeoutError:
        say(event="timeout")
    await c.disconnect()


asyncio.run(main())
