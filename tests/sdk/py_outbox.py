"""A centrifuge-python subscriber for the outbox test: subscribes to RINGCAST_CHANNEL, prints
"ready", then waits for RINGCAST_COUNT publications and prints their data["n"] values as a JSON
list (or what it got by the deadline, RINGCAST_WAIT seconds).

Env: RINGCAST_URL, RINGCAST_SECRET, RINGCAST_CA, RINGCAST_CHANNEL, RINGCAST_COUNT, RINGCAST_WAIT.
"""
import asyncio
import json
import os
import ssl
import time

import jwt
from centrifuge import Client, SubscriptionEventHandler


class Collect(SubscriptionEventHandler):
    def __init__(self):
        self.got = []
        self.done = asyncio.Event()

    async def on_publication(self, ctx):
        self.got.append(ctx.pub.data["n"])
        if len(self.got) >= int(os.environ["RINGCAST_COUNT"]):
            self.done.set()


async def main():
    ctx = ssl.create_default_context(cafile=os.environ["RINGCAST_CA"])
    tok = jwt.encode({"sub": "watcher", "exp": int(time.time()) + 3600},
                     os.environ["RINGCAST_SECRET"], algorithm="HS256")
    c = Client(os.environ["RINGCAST_URL"], token=tok, ssl_context=ctx, proxy=None)
    ev = Collect()
    s = c.new_subscription(os.environ["RINGCAST_CHANNEL"], events=ev)
    await c.connect()
    await s.subscribe()
    await s.ready()
    print("ready", flush=True)
    try:
        await asyncio.wait_for(ev.done.wait(), float(os.environ.get("RINGCAST_WAIT", "60")))
    except asyncio.TimeoutError:
        pass
    print(json.dumps(ev.got), flush=True)
    await c.disconnect()


asyncio.run(main())
