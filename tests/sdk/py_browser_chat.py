"""The chat page judged by a real browser: headless Chromium (Debian `chromium` +
`chromium-driver`, driven by PyPI `selenium`) opens ringcast's own page (GET /) in three
windows as alice, bob and the moderator mia, with tokens minted by `ringcast token`.

They chat (a mention highlighted and notified), see each other's presence and status, react,
an HTML-looking message stays text (no <img> in the DOM), and the moderator mutes bob from the
page, after which bob's message is refused with the mute's end. Screenshots of the chat page
and the stats page go to RINGCAST_SCREENSHOTS when set.

Env: RINGCAST_HTTPS (https://127.0.0.1:port), RINGCAST_TOKEN_ALICE, RINGCAST_TOKEN_BOB,
RINGCAST_TOKEN_MIA. Prints "ok <scenario>"; exits 1 on the first failure.
"""
import os
import time

from checks import check
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE = os.environ["RINGCAST_HTTPS"]
SHOTS = os.environ.get("RINGCAST_SCREENSHOTS")
XSS = "<img src=x onerror=alert(1)>"


def browser():
    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
                "--disable-dev-shm-usage", "--window-size=1200,800"):
        opts.add_argument(arg)
    opts.set_capability("acceptInsecureCerts", True)  # the dev certificate
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


class Page:
    """One window of the shared browser, as one user."""

    def __init__(self, driver, handle, name):
        self.d, self.handle, self.name = driver, handle, name

    def go(self):
        self.d.switch_to.window(self.handle)
        return self

    def text(self, css):
        self.go()
        return [e.text for e in self.d.find_elements(By.CSS_SELECTOR, css)]

    def wait(self, what, cond, timeout=10):
        self.go()
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(lambda d: cond(d))
        except Exception:
            print(f"{self.name}: page text at the failure:\n{self.d.find_element(By.TAG_NAME, 'body').text}")
            for entry in self.d.get_log("browser"):
                print(f"{self.name} console:", entry.get("message"))
            check(False, f"{self.name}: {what} within {timeout} s")

    def say(self, text):
        self.go()
        box = self.d.find_element(By.ID, "text")
        box.clear()
        box.send_keys(text)
        self.d.find_element(By.ID, "send").click()


def messages(d):
    return [e.text for e in d.find_elements(By.CSS_SELECTOR, "#messages .msg .text")]


def main():
    d = browser()
    try:
        pages = []
        for name in ("alice", "bob", "mia"):
            if pages:
                d.switch_to.new_window("window")
            token = os.environ[f"RINGCAST_TOKEN_{name.upper()}"]
            d.get(f"{BASE}/#token={token}")
            pages.append(Page(d, d.current_window_handle, name))
        alice, bob, mia = pages
        for p in pages:
            p.wait("connected to room:lobby", lambda d: d.find_element(By.ID, "room-name").text == "room:lobby"
                   and d.find_element(By.ID, "state").text == "connected")
            check(p.name in p.text("#me")[0], f"{p.name}: shown as {p.text('#me')}")
        print("ok three users connected with `ringcast token` tokens, the page joined room:lobby")

        alice.wait("sees bob and mia here", lambda d: {"bob", "mia"} <= {
            e.get_attribute("data-user") for e in d.find_elements(By.CSS_SELECTOR, "#presence .member")})
        print("ok presence lists the others")

        alice.say("hello @bob")
        bob.wait("alice's message", lambda d: "hello @bob" in messages(d))
        bob.go()
        mine = d.find_elements(By.CSS_SELECTOR, "#messages .msg.mentions-me .mention")
        check(any(m.text == "@bob" for m in mine), "the mention of bob is highlighted for bob")
        bob.wait("a mention notification", lambda d: any(
            "mentioned you" in e.text for e in d.find_elements(By.CSS_SELECTOR, "#notifications li")))
        print("ok a message with a mention: shown, highlighted, notified")

        bob.go()
        Select(d.find_element(By.ID, "status")).select_by_value("away")
        alice.wait("bob away", lambda d: any(
            e.get_attribute("data-user") == "bob" and "away" in e.text
            for e in d.find_elements(By.CSS_SELECTOR, "#presence .member")))
        print("ok bob's status change reaches alice's presence list")

        bob.go()
        first = d.find_elements(By.CSS_SELECTOR, "#messages .msg")[-1]
        first.find_element(By.CSS_SELECTOR, ".react[data-emoji='👍']").click()
        alice.wait("bob's reaction", lambda d: any(
            b.get_attribute("data-count") == "1"
            for b in d.find_elements(By.CSS_SELECTOR, "#messages .msg .react[data-emoji='👍']")))
        print("ok bob's reaction is counted on alice's page")

        alice.say(XSS)
        bob.wait("the html-looking message", lambda d: XSS in messages(d))
        bob.go()
        check(not d.find_elements(By.CSS_SELECTOR, "#messages img"), "no <img> element made from a message")
        print("ok an HTML-looking message is shown as text, no element made")

        mia.wait("moderation buttons for bob", lambda d: d.find_elements(
            By.CSS_SELECTOR, "#presence .member[data-user=bob] button.mute"))
        check(not alice.text("#presence button.mute"), "alice (a user) has no moderation buttons")
        mia.go()
        d.find_element(By.CSS_SELECTOR, "#presence .member[data-user=bob] button.mute").click()
        bob.wait("told of the mute", lambda d: any(
            "moderation: mute" in e.text for e in d.find_elements(By.CSS_SELECTOR, "#notifications li")))
        bob.say("can I still talk?")
        bob.wait("the mute error", lambda d: "muted until" in d.find_element(By.ID, "error").text)
        time.sleep(0.3)
        check("can I still talk?" not in alice.text("#messages .msg .text"), "the muted message was not delivered")
        print("ok the moderator mutes bob from the page; bob's next message is refused with the mute's end")

        if SHOTS:
            os.makedirs(SHOTS, exist_ok=True)
            alice.go()
            d.save_screenshot(os.path.join(SHOTS, "chat-page.png"))
            mia.go()
            d.save_screenshot(os.path.join(SHOTS, "chat-page-moderator.png"))
            d.get(f"{BASE}/stats")
            WebDriverWait(d, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#stats tbody tr")) > 3)
            time.sleep(1.5)
            d.save_screenshot(os.path.join(SHOTS, "stats-page.png"))
            print("ok screenshots saved")
        else:
            d.get(f"{BASE}/stats")
            WebDriverWait(d, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#stats tbody tr")) > 3)
            print("ok the stats page shows the counters")
    finally:
        d.quit()


if __name__ == "__main__":
    main()
