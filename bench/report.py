#!/usr/bin/env python3
"""Prints the benchmark table from bench/run's results, with each target's
PASS/FAIL. Usage: report.py results.jsonl flood.json verify_ms hash_workers
peak_rss_kb duration connections"""
import json
import platform
import subprocess
import sys

results_path, flood_path, verify_ms, hash_workers, peak_kb, duration, conns = sys.argv[1:8]
verify_ms, hash_workers, peak_kb = float(verify_ms), int(hash_workers), int(peak_kb)
rows = {}
for line in open(results_path):
    r = json.loads(line)
    res = r["result"]
    secs = res["duration_us"] / 1e6
    rows[r["name"]] = {
        "rps": res["requests"] / secs,
        "ok_rps": (res["requests"] - res["rpc_errors"]) / secs,
        "p50": res["p50_us"] / 1000,
        "p99": res["p99_us"] / 1000,
        "errors": res["rpc_errors"] + res["socket_errors"],
        "shed": res["shed"],
    }
try:
    flood = json.load(open(flood_path))
except (OSError, ValueError):
    flood = None

ceiling = rows.get("ceiling", {}).get("rps", 0) or float("nan")
bound = hash_workers * 1000 / verify_ms

print(f"machine: {platform.node()} {platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores; "
      f"wrk -t2 -c{conns} -d{duration}s; bcrypt cost 12 verify = {verify_ms:.0f} ms, "
      f"bound = {hash_workers} / {verify_ms:.0f} ms = {bound:.1f}/s")
print()
print(f"| {'scenario':<24} | {'req/s':>9} | {'ok/s':>9} | {'p50 ms':>7} | {'p99 ms':>7} | {'errors':>7} | {'ratio':>13} |")
print(f"|{'-'*26}|{'-'*11}|{'-'*11}|{'-'*9}|{'-'*9}|{'-'*9}|{'-'*15}|")
for name, r in rows.items():
    if name in ("login", "register"):
        ratio = f"{r['ok_rps'] / bound:6.0%} bcrypt"
    elif name.startswith("peer_"):
        ratio = ""
    else:
        ratio = f"{r['rps'] / ceiling:6.0%} ceiling"
    print(f"| {name:<24} | {r['rps']:9.0f} | {r['ok_rps']:9.0f} | {r['p50']:7.2f} | {r['p99']:7.2f} | {r['errors']:7d} | {ratio:>13} |")
if flood:
    print(f"\nlogin flood ({flood['sent'] / flood['seconds']:.0f}/s offered, {flood['seconds']} s): "
          f"{flood['ok']} ok (p99 {flood['ok_p99_ms']:.0f} ms), {flood['shed']} shed with -32002 "
          f"(p50 {flood['shed_p50_ms']:.1f} ms, p99 {flood['shed_p99_ms']:.1f} ms), {flood['other']} other")
print(f"server peak RSS (VmHWM, largest over the run's server processes): {peak_kb / 1024:.1f} MB")

checks = []
def check(label, ok):
    checks.append((label, ok))
def get(name, key="rps"):
    return rows.get(name, {}).get(key, float("nan"))

check("ping >= 90% of ceiling", get("ping") >= 0.9 * ceiling)
for name in ("introspect_hit", "user_get_cached"):
    check(f"{name} >= 60% of ceiling", get(name) >= 0.6 * ceiling)
    check(f"{name} p99 < 10 ms", get(name, "p99") < 10)
check("user.gets x100 users/s >= 10x uncached user.get",
      get("user_gets100_uncached", "ok_rps") * 100 >= 10 * get("user_get_uncached", "ok_rps"))
check("auth.login >= 85% of bcrypt bound", get("login", "ok_rps") >= 0.85 * bound)
check("introspect under 4x login flood >= 70% of unloaded",
      get("introspect_under_flood") >= 0.7 * get("introspect_hit"))
if flood:
    check("flood: 4x bound offered", flood["sent"] / flood["seconds"] >= 3.5 * bound)
    check("flood: excess logins shed, p99 < 50 ms", flood["shed"] > 0 and flood["shed_p99_ms"] < 50)
else:
    check("flood ran", False)
if "peer_get_session" in rows:
    check("introspect ahead of better-auth get-session", get("introspect_hit") > get("peer_get_session"))
else:
    check("better-auth measured", False)
check("peak RSS < 100 MB", peak_kb < 100 * 1024)
print()
for label, ok in checks:
    print(f"{'PASS' if ok else 'FAIL'}  {label}")
