#!/usr/bin/env python3
"""The client and the recorder of scripts/memory.sh (standard library only).

Records the server's resident memory idle after start, then runs RUNS executions across every
installed language (each language's example script), with every tenth run printing past the
output cap and every tenth a few hundred kilobytes under it, from a few clients that submit with
`?wait=true`; records the memory every 200 runs, at the end, and after a minute idle.
"""
import argparse
import json
import sys
import threading
import time

from soak import Client


def rss_kb(pid):
    """Resident memory in KiB: (total, anonymous, file-backed)."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("RssAnon", 0), fields.get("RssFile", 0)


def signed_in(base, name):
    cl = Client(base)
    cl.request("POST", "/api/v1/auth/register",
               {"username": name, "email": f"{name}@example.com", "password": "memory-password-1"})
    status, body = cl.request("POST", "/api/v1/auth/login",
                              {"username": name, "password": "memory-password-1"}, form=True)
    if status != 200:
        sys.exit(f"login: {status} {body}")
    cl.csrf = body["csrf_token"]
    return cl


def jobs(examples, versions, runs):
    """The RUNS requests: languages in turn, with output-cap and large-output runs mixed in."""
    langs = sorted(lang for lang in examples if lang in versions)
    out = []
    for i in range(runs):
        if i % 10 == 3:
            out.append(("output-cap", {"script": "import sys\nsys.stdout.write('x' * 8_000_000)",
                                       "lang": "python", "lang_version": versions["python"]}))
        elif i % 10 == 7:
            out.append(("large-output", {"script": "print('y' * 400_000)",
                                         "lang": "python", "lang_version": versions["python"]}))
        else:
            lang = langs[i % len(langs)]
            out.append((lang, {"script": examples[lang], "lang": lang, "lang_version": versions[lang]}))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--idle", type=int, default=60, help="seconds idle before the last sample")
    a = ap.parse_args()

    deadline = time.time() + 120
    while True:
        cl = Client(a.base)
        try:
            if cl.request("GET", "/api/v1/health/ready")[0] == 200:
                break
        except OSError:
            pass
        if time.time() > deadline:
            sys.exit("server did not come up")
        time.sleep(0.5)
    # Past the allocator's decay (10 s): the startup's transient allocations (the seeded users'
    # password hashes, 19 MiB each) are given back by then.
    time.sleep(15)
    samples = [("idle after start", 0, rss_kb(a.pid))]
    print(json.dumps({"at": samples[0][0], "rss_kb": samples[0][2][0]}), flush=True)

    first = signed_in(a.base, f"memory{int(time.time())}")
    _, examples = first.request("GET", "/api/v1/example-scripts")
    _, limits = first.request("GET", "/api/v1/k8s-limits")
    versions = {lang: info["versions"][-1] for lang, info in limits["supported_runtimes"].items() if info["versions"]}
    todo = jobs(examples["scripts"], versions, a.runs)
    langs = sorted({kind for kind, _ in todo})
    print(f"{a.runs} runs over {langs}", flush=True)

    lock = threading.Lock()
    done = {"n": 0}
    outcomes = {}
    failures = []

    def client(n):
        cl = signed_in(a.base, f"memory{int(time.time())}c{n}")
        while True:
            with lock:
                if not todo:
                    return
                kind, body = todo.pop()
            status, result = cl.request("POST", "/api/v1/execute?wait=true", body)
            with lock:
                key = (kind, status, (result or {}).get("status"), (result or {}).get("error_type"))
                outcomes[key] = outcomes.get(key, 0) + 1
                # A run past the output cap ends `failed` with `resource_limit`, by design.
                expected = ("failed", "resource_limit") if kind == "output-cap" else ("completed", None)
                got = ((result or {}).get("status"), (result or {}).get("error_type"))
                if status != 200 or got[0] != expected[0] or (expected[1] and got[1] != expected[1]):
                    failures.append((kind, status, result))
                done["n"] += 1
                if done["n"] % 200 == 0:
                    samples.append((f"after {done['n']} runs", done["n"], rss_kb(a.pid)))
                    print(json.dumps({"at": samples[-1][0], "rss_kb": samples[-1][2][0]}), flush=True)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.time() - start
    samples.append(("after the runs", done["n"], rss_kb(a.pid)))
    print(json.dumps({"at": samples[-1][0], "rss_kb": samples[-1][2][0]}), flush=True)
    time.sleep(a.idle)
    samples.append((f"after {a.idle} s idle", done["n"], rss_kb(a.pid)))

    print(f"\n{done['n']} runs in {took:.0f} s")
    for (kind, status, st, error_type), n in sorted(outcomes.items(), key=str):
        print(f"  {kind:14} HTTP {status} {st} {error_type or ''}: {n}")
    for at, _, (kb, anon, file) in samples:
        print(f"  RSS {at:24} {kb / 1024:7.1f} MiB  (anonymous {anon / 1024:.1f}, file {file / 1024:.1f})")
    for kind, status, result in failures[:5]:
        print(f"  not completed: {kind} {status} {json.dumps(result)[:300]}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
