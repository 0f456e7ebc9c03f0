#!/usr/bin/env python3
"""The clients and the recorder of scripts/soak.sh (standard library only).

Each client registers once, then in a loop: logs in, submits a short script, follows its
execution stream to the end, checks the result, and every few rounds logs out. Other clients
hold notification streams open (the server ends them after their lifetime; they reconnect with
Last-Event-ID). A recorder samples the server's RSS, open files, database size and event count
every minute.
"""
import argparse
import csv
import http.client
import json
import os
import random
import sqlite3
import sys
import threading
import time
import urllib.parse

stop = threading.Event()
counts = {"logins": 0, "executions": 0, "results": 0, "streams": 0, "reconnects": 0, "errors": 0, "5xx": 0}
lock = threading.Lock()


def bump(key, n=1):
    with lock:
        counts[key] += n


class Client:
    def __init__(self, base):
        u = urllib.parse.urlparse(base)
        self.host, self.port = u.hostname, u.port
        self.cookies = {}
        self.csrf = ""

    def conn(self, timeout=30):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def headers(self, extra=None):
        h = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if self.csrf:
            h["X-CSRF-Token"] = self.csrf
        h.update(extra or {})
        return h

    def keep_cookies(self, resp):
        for k, v in resp.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]

    def request(self, method, path, body=None, form=False):
        c = self.conn()
        try:
            if form:
                data = urllib.parse.urlencode(body)
                h = self.headers({"Content-Type": "application/x-www-form-urlencoded"})
            elif body is not None:
                data = json.dumps(body)
                h = self.headers({"Content-Type": "application/json"})
            else:
                data, h = None, self.headers()
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            self.keep_cookies(r)
            if r.status >= 500:
                bump("5xx")
            try:
                return r.status, json.loads(raw or b"null")
            except ValueError:
                return r.status, None
        finally:
            c.close()

    def stream(self, path, until=None, last_id=None, timeout=60):
        """Reads an SSE stream; returns (frames, last id, ended by server)."""
        c = self.conn(timeout=timeout)
        frames, ident = [], last_id
        try:
            extra = {"Accept": "text/event-stream"}
            if last_id is not None:
                extra["Last-Event-ID"] = str(last_id)
            c.request("GET", path, headers=self.headers(extra))
            r = c.getresponse()
            if r.status != 200:
                r.read()
                if r.status >= 500:
                    bump("5xx")
                return frames, ident, False
            bump("streams")
            buf = b""
            while not stop.is_set():
                chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
                if not chunk:
                    return frames, ident, True
                buf += chunk
                while b"\r\n\r\n" in buf:
                    raw, buf = buf.split(b"\r\n\r\n", 1)
                    data = None
                    for line in raw.decode().split("\r\n"):
                        if line.startswith("id: "):
                            ident = int(line[4:])
                        elif line.startswith("data: "):
                            data = json.loads(line[6:])
                    if data is not None:
                        frames.append(data)
                        if until and until(data):
                            return frames, ident, False
            return frames, ident, False
        finally:
            c.close()


def runner(base, n):
    cl = Client(base)
    name = f"soak{n}{random.randrange(1 << 30)}"
    cl.request("POST", "/api/v1/auth/register", {"username": name, "email": f"{name}@example.com", "password": "soak-password-1"})
    rounds = 0
    while not stop.is_set():
        try:
            if not cl.csrf:
                status, body = cl.request("POST", "/api/v1/auth/login", {"username": name, "password": "soak-password-1"}, form=True)
                if status != 200:
                    bump("errors"); time.sleep(1); continue
                cl.csrf = body["csrf_token"]
                bump("logins")
            status, body = cl.request("POST", "/api/v1/execute", {"script": f"print({rounds} * 2)", "lang": "python", "lang_version": "3.11"})
            if status != 200:
                bump("errors"); time.sleep(1); continue
            bump("executions")
            eid = body["execution_id"]
            cl.stream(f"/api/v1/events/executions/{eid}", until=lambda d: d.get("event_type") in ("result_stored", "execution_cancelled"))
            status, result = cl.request("GET", f"/api/v1/executions/{eid}/result")
            if status == 200 and result.get("status") == "completed":
                bump("results")
            else:
                bump("errors")
            rounds += 1
            if rounds % 5 == 0:
                cl.request("POST", "/api/v1/auth/logout")
                cl.csrf = ""
                cl.cookies.clear()
        except Exception as e:  # noqa: BLE001 - a soak counts failures and goes on
            bump("errors")
            print(f"client {n}: {e!r}", file=sys.stderr)
            time.sleep(1)


def listener(base, n):
    cl = Client(base)
    name = f"soaklisten{n}{random.randrange(1 << 30)}"
    cl.request("POST", "/api/v1/auth/register", {"username": name, "email": f"{name}@example.com", "password": "soak-password-1"})
    status, body = cl.request("POST", "/api/v1/auth/login", {"username": name, "password": "soak-password-1"}, form=True)
    if status != 200:
        bump("errors"); return
    cl.csrf = body["csrf_token"]
    last = None
    while not stop.is_set():
        try:
            _, last, ended = cl.stream("/api/v1/events/notifications/stream", last_id=last, timeout=120)
            if ended:
                bump("reconnects")
        except Exception as e:  # noqa: BLE001
            bump("errors")
            print(f"listener {n}: {e!r}", file=sys.stderr)
            time.sleep(1)


def sample(pid, db):
    def status_kb(field):
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
        return 0
    size = sum(os.path.getsize(db + s) for s in ("", "-wal", "-shm") if os.path.exists(db + s))
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        events = con.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        executions = con.execute("SELECT COUNT(*) FROM executions").fetchone()[0]
    finally:
        con.close()
    return {
        "t": round(time.time()),
        "rss_kb": status_kb("VmRSS:"),
        "open_files": len(os.listdir(f"/proc/{pid}/fd")),
        "db_bytes": size,
        "db_events": events,
        "db_executions": executions,
        **dict(counts),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    deadline = time.time() + 120
    while True:
        try:
            c = http.client.HTTPConnection(urllib.parse.urlparse(a.base).hostname, urllib.parse.urlparse(a.base).port, timeout=5)
            c.request("GET", "/api/v1/health/live")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        if time.time() > deadline:
            sys.exit("server did not come up")
        time.sleep(0.5)

    threads = [threading.Thread(target=runner, args=(a.base, i), daemon=True) for i in range(a.clients)]
    threads += [threading.Thread(target=listener, args=(a.base, i), daemon=True) for i in range(max(2, a.clients // 2))]
    for t in threads:
        t.start()
    rows = []
    with open(a.out, "w", newline="") as f:
        w = None
        start = time.time()
        end = start + a.minutes * 60
        while True:
            row = sample(a.pid, a.db)
            row["minute"] = round((time.time() - start) / 60, 1)
            rows.append(row)
            if w is None:
                w = csv.DictWriter(f, fieldnames=list(row))
                w.writeheader()
            w.writerow(row)
            f.flush()
            print(json.dumps(row), flush=True)
            if time.time() >= end:
                break
            time.sleep(min(60, max(0, end - time.time())))
    stop.set()
    first, last = rows[0], rows[-1]
    print("\nsoak summary over %.1f minutes" % last["minute"])
    for key in ("rss_kb", "open_files", "db_bytes", "db_events", "db_executions"):
        print(f"  {key:12} start {first[key]:>12}  end {last[key]:>12}  max {max(r[key] for r in rows):>12}")
    for key in ("logins", "executions", "results", "streams", "reconnects", "errors", "5xx"):
        print(f"  {key:12} {last[key]}")
    sys.exit(1 if last["5xx"] else 0)


if __name__ == "__main__":
    main()
