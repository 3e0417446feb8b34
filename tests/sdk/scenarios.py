"""Runs a script's scenarios in order: prints "ok <name>" for each, stops at the first failure
with "FAILED <name>" and its traceback, and exits 1 then (0 when all passed)."""
import asyncio
import sys
import traceback


def run(scenarios, timeout):
    async def main():
        for s in scenarios:
            try:
                await asyncio.wait_for(s(), timeout)
                print(f"ok {s.__name__}", flush=True)
            except BaseException:
                print(f"FAILED {s.__name__}:\n{traceback.format_exc()}", flush=True)
                return 1
        return 0

    sys.exit(asyncio.run(main()))
