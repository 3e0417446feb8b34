"""Small helpers the compression judges share: fail loudly, read one /metrics value."""
import sys
import urllib.request


def check(cond, what):
    if not cond:
        print(f"FAILED {what}")
        sys.exit(1)


def metric(url, name):
    """The value of an unlabelled metric in the server's /metrics text."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")
