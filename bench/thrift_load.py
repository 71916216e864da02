"""The Python service's own load pattern, from its own client: threads of
thriftpy2's make_client (binary protocol, buffered transport) calling
createUser(User(id=..., password="Thrift-load-Passphrase-42", state=0)) against profiteer's
[THRIFT] port for a fixed time. Prints one RESULT line as bench/lua/common.lua
does, for bench/report.py.

usage: thrift_load.py HOST PORT CONNECTIONS SECONDS ID_BASE
BENCH_BACKOFF_MS: wait that long after an exception (0, the default: the
next call goes at once, as the old load test's loop does).
"""
import json
import os
import sys
import threading
import time

import thriftpy2
from thriftpy2.rpc import make_client
from thriftpy2.thrift import TApplicationException

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
user_thrift = thriftpy2.load(os.path.join(ROOT, "tests/thrift/user.thrift"),
                             module_name="user_thrift")


def main():
    host, port, conns, seconds, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        float(sys.argv[4]), int(sys.argv[5])
    backoff = float(os.environ.get("BENCH_BACKOFF_MS", "0")) / 1000
    lock = threading.Lock()
    latencies, counts = [], {"ok": 0, "rpc_errors": 0, "socket_errors": 0, "shed": 0}
    start = time.monotonic()
    until = start + seconds

    def worker(index):
        client = None
        n = 0
        while time.monotonic() < until:
            if client is None:
                try:
                    client = make_client(user_thrift.UserService, host, port, timeout=10000)
                except Exception:
                    with lock:
                        counts["socket_errors"] += 1
                    time.sleep(0.1)
                    continue
            n += 1
            uid = base + n * conns + index
            began = time.monotonic()
            outcome = "ok"
            try:
                client.createUser(user_thrift.User(id=uid, password="Thrift-load-Passphrase-42", state=0))
            except TApplicationException as e:
                outcome = "rpc_errors"
                if '"code":-32002' in (e.message or ""):
                    with lock:
                        counts["shed"] += 1
            except Exception:
                outcome = "socket_errors"
                client.close()
                client = None
            took = time.monotonic() - began
            with lock:
                counts[outcome] += 1
                latencies.append(took)
            if outcome != "ok" and backoff:
                time.sleep(backoff)
        if client is not None:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    latencies.sort()

    def pct(p):
        if not latencies:
            return 0
        return int(latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1e6)

    requests = counts["ok"] + counts["rpc_errors"] + counts["socket_errors"]
    print("RESULT " + json.dumps({
        "requests": requests, "duration_us": int(elapsed * 1e6),
        "p50_us": pct(50), "p99_us": pct(99),
        "socket_errors": counts["socket_errors"], "rpc_errors": counts["rpc_errors"],
        "shed": counts["shed"],
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
