"""permessage-deflate judged by a real browser: headless Chromium (Debian `chromium` +
`chromium-driver`, driven by PyPI `selenium`) opens a WebSocket to a raw room, where Chromium
offers permessage-deflate as it always does, sends a 2 KiB JSON message, and reads the echo.
Proof of compression both ways: the extension the browser reports as agreed, and the server's
counters (messages inflated from the browser, messages compressed for it).

Env: RINGCAST_WSS (wss://host:port), RINGCAST_SECRET, RINGCAST_METRICS.
Prints "ok <scenario>"; exits 1 on the first failure.
"""
import http.server
import json
import os
import threading
import time

import checks
import jwt
from checks import check
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

WSS = os.environ["RINGCAST_WSS"]
SECRET = os.environ["RINGCAST_SECRET"]
METRICS = os.environ["RINGCAST_METRICS"]


def metric(name):
    return checks.metric(METRICS, name)


SCRIPT = """
const [url, message, done] = arguments;
const ws = new WebSocket(url);
ws.onerror = () => done({error: "websocket error"});
ws.onopen = () => ws.send(message);
ws.onmessage = (e) => { done({extensions: ws.extensions, echo: e.data}); ws.close(); };
setTimeout(() => done({error: "no echo within 10 s"}), 10000);
"""


class Blank(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<!doctype html><title>ringcast deflate test</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    # The page comes from loopback too, as a page served beside the server would: Chromium's
    # local-network-access checks block a blank page from reaching 127.0.0.1.
    page = http.server.HTTPServer(("127.0.0.1", 0), Blank)
    threading.Thread(target=page.serve_forever, daemon=True).start()
    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
                "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.set_capability("acceptInsecureCerts", True)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the dev certificate
    opts.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.set_script_timeout(15)
        driver.get(f"http://127.0.0.1:{page.server_address[1]}/")
        token = jwt.encode({"sub": "wendy", "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")
        message = json.dumps({"type": "message", "text": "the quick brown fox jumps over the lazy dog " * 46})
        before_in = metric("ringcast_deflate_messages_inflated_total")
        before_out = metric("ringcast_deflate_messages_compressed_total")
        got = driver.execute_async_script(SCRIPT, f"{WSS}/browser-room?token={token}", message)
        if "error" in got:
            for entry in driver.get_log("browser"):
                print("browser:", entry.get("message"))
        check("error" not in got, f"the browser's WebSocket: {got}")
        ext = got["extensions"]
        check(ext.startswith("permessage-deflate") and "server_no_context_takeover" in ext,
              f"Chromium agreed to permessage-deflate: {ext!r}")
        check(got["echo"] == message, "the echo arrives intact")
        check(metric("ringcast_deflate_messages_inflated_total") > before_in,
              "the server inflated the browser's compressed message")
        check(metric("ringcast_deflate_messages_compressed_total") > before_out,
              "the server compressed the echo for the browser")
        print("ok chromium_compressed_both_ways")
    finally:
        driver.quit()


main()
