#!/usr/bin/env python3
"""Prints the benchmark table from bench/run's results, with each target's
PASS/FAIL, draws the run as an SVG chart, and exits 1 if any target failed.
Usage: report.py results.jsonl flood.json verify_ms hash_workers
peak_rss_kb duration connections [chart.svg]
Environment: BENCH_USERS (seeded accounts; 1M raises the RSS budget),
BENCH_ATTACKS (bench/attack.rs's lines), BENCH_ATTACK_PEAK_KB."""
import json
import math
import os
import platform
import subprocess
import sys

results_path, flood_path, verify_ms, hash_workers, peak_kb, duration, conns = sys.argv[1:8]
chart_path = sys.argv[8] if len(sys.argv) > 8 else None
verify_ms, hash_workers, peak_kb = float(verify_ms), int(hash_workers), int(peak_kb)
users = int(os.environ.get("BENCH_USERS", "100000"))
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
        "conns": r.get("conns", int(conns)),
    }
try:
    flood = json.load(open(flood_path))
except (OSError, ValueError):
    flood = None

ceiling = rows.get("ceiling", {}).get("rps", 0) or float("nan")
bound = hash_workers * 1000 / verify_ms
# Each call costs one bcrypt hash or verification: compared with the bound.
BCRYPT = ("login", "register", "create_user_rpc", "create_user_thrift")


def reference(name):
    """What a scenario's rate is compared with: (label, rate) or None."""
    if name in BCRYPT:
        return "bcrypt", bound
    if name.startswith("peer_"):
        return None
    return "ceiling", ceiling


machine = (f"{platform.node()} {platform.machine()}, "
           f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores")
print(f"machine: {machine}; wrk -t2 -c{conns} -d{duration}s (other -c in the c column); "
      f"{users} users; bcrypt cost 12 verify = {verify_ms:.0f} ms, "
      f"bound = {hash_workers} / {verify_ms:.0f} ms = {bound:.1f}/s")
print()
print(f"| {'scenario':<24} | {'c':>4} | {'req/s':>9} | {'ok/s':>9} | {'p50 ms':>7} | {'p99 ms':>7} | {'errors':>7} | {'ratio':>14} |")
print(f"|{'-'*26}|{'-'*6}|{'-'*11}|{'-'*11}|{'-'*9}|{'-'*9}|{'-'*9}|{'-'*16}|")
for name, r in rows.items():
    ref = reference(name)
    if ref is None:
        ratio = ""
    else:
        rate = r["ok_rps"] if name in BCRYPT else r["rps"]
        ratio = f"{rate / ref[1]:6.0%} {ref[0]}"
    print(f"| {name:<24} | {r['conns']:4d} | {r['rps']:9.0f} | {r['ok_rps']:9.0f} | {r['p50']:7.2f} | "
          f"{r['p99']:7.2f} | {r['errors']:7d} | {ratio:>14} |")
if flood:
    print(f"\nlogin flood ({flood['sent'] / flood['seconds']:.0f}/s offered, {flood['seconds']} s): "
          f"{flood['ok']} ok (p99 {flood['ok_p99_ms']:.0f} ms), {flood['shed']} shed with -32002 "
          f"(p50 {flood['shed_p50_ms']:.1f} ms, p99 {flood['shed_p99_ms']:.1f} ms), {flood['other']} other"
          + (" (" + ", ".join(f"{k}: {v}" for k, v in flood.get("other_by", {}).items()) + ")"
             if flood.get("other_by") else ""))
print(f"server peak RSS (VmHWM, largest over the run's server processes): {peak_kb / 1024:.1f} MB")

checks = []


def check(label, ok, detail=""):
    checks.append((label, bool(ok), detail))


def get(name, key="rps"):
    return rows.get(name, {}).get(key, float("nan"))


def pct(a, b):
    return f"{a / b:.0%}" if b and not math.isnan(a) and not math.isnan(b) else "n/a"


check("ping >= 90% of ceiling", get("ping") >= 0.9 * ceiling, pct(get("ping"), ceiling))
for name in ("introspect_hit", "user_get_cached"):
    check(f"{name} >= 60% of ceiling", get(name) >= 0.6 * ceiling, pct(get(name), ceiling))
    check(f"{name} p99 < 10 ms", get(name, "p99") < 10, f"{get(name, 'p99'):.1f} ms")
check("user.gets x100 users/s >= 10x uncached user.get",
      get("user_gets100_uncached", "ok_rps") * 100 >= 10 * get("user_get_uncached", "ok_rps"),
      f"{get('user_gets100_uncached', 'ok_rps') * 100 / get('user_get_uncached', 'ok_rps'):.0f}x")
check("user_get_uncached >= 50% of bare_pair",
      get("user_get_uncached", "ok_rps") >= 0.5 * get("bare_pair", "ok_rps"),
      pct(get("user_get_uncached", "ok_rps"), get("bare_pair", "ok_rps")))
check("introspect_miss >= 70% of bare_pg",
      get("introspect_miss", "ok_rps") >= 0.7 * get("bare_pg", "ok_rps"),
      pct(get("introspect_miss", "ok_rps"), get("bare_pg", "ok_rps")))
check("user.search by prefix p99 < 20 ms", get("user_search_prefix", "p99") < 20,
      f"{get('user_search_prefix', 'p99'):.1f} ms")
check("user.gets of 1,000 ids p99 < 250 ms", get("user_gets1000", "p99") < 250,
      f"{get('user_gets1000', 'p99'):.1f} ms")
for name in ("ping", "introspect_hit"):
    wide = f"{name}_c1000"
    check(f"{wide} >= 80% of -c{conns}", get(wide) >= 0.8 * get(name), pct(get(wide), get(name)))
    check(f"{wide} p99 < 100 ms", get(wide, "p99") < 100, f"{get(wide, 'p99'):.1f} ms")
    check(f"{wide} no errors", get(wide, "errors") == 0, f"{get(wide, 'errors'):.0f}")
# Scenarios where any error is a defect (others refuse on purpose).
CLEAN = ("ping", "introspect_hit", "introspect_miss", "authorize", "user_get_cached",
         "user_get_uncached", "user_gets100_uncached", "mixed", "bare_pair", "bare_pg",
         "user_search_prefix", "user_gets1000")
for name in CLEAN:
    if rows.get(name, {}).get("errors", 0):
        check(f"{name} no errors", False, f"{rows[name]['errors']}")
check("auth.login >= 85% of bcrypt bound", get("login", "ok_rps") >= 0.85 * bound,
      pct(get("login", "ok_rps"), bound))
check("introspect under 4x login flood >= 70% of unloaded",
      get("introspect_under_flood") >= 0.7 * get("introspect_hit"),
      pct(get("introspect_under_flood"), get("introspect_hit")))
if flood:
    check("flood: 4x bound offered", flood["sent"] / flood["seconds"] >= 3.5 * bound,
          f"{flood['sent'] / flood['seconds'] / bound:.1f}x")
    check("flood: excess logins shed, p99 < 50 ms", flood["shed"] > 0 and flood["shed_p99_ms"] < 50,
          f"{flood['shed']} shed, p99 {flood['shed_p99_ms']:.1f} ms")
else:
    check("flood ran", False)
if "peer_get_session" in rows:
    check("introspect ahead of better-auth get-session", get("introspect_hit") > get("peer_get_session"))
else:
    check("better-auth measured", False)
# The edge under attack (bench/attack.rs): ping keeps >= 80% of the rate it
# had just before the attack (NAME_base), and p99 < 50 ms.
ATTACKS = ("ping_under_idle", "ping_under_header_trickle", "ping_under_body_trickle",
           "ping_under_expect_stall")
for name in ATTACKS:
    base = get(f"{name}_base")
    check(f"{name} >= 80% of {name}_base", get(name) >= 0.8 * base, pct(get(name), base))
    check(f"{name} p99 < 50 ms", get(name, "p99") < 50, f"{get(name, 'p99'):.1f} ms")
try:
    attacks = [json.loads(line) for line in open(os.environ.get("BENCH_ATTACKS", ""))]
except (OSError, ValueError):
    attacks = []
if attacks:
    print("\nattack clients (bench/attack.rs; what the server did to them):")
    for a in attacks:
        print(f"  {a['mode']:<8} {a['clients']:5d} clients, {a['seconds']} s: {a['connects']} connects "
              f"({a['connect_errors']} failed), {a['closed_by_server']} closed by the server, "
              f"answers {a['answers']}")
    attack_kb = int(os.environ.get("BENCH_ATTACK_PEAK_KB", "0"))
    print(f"server peak RSS during the attacks (not in the RSS target): {attack_kb / 1024:.1f} MB")
rss_mb = 150 if users >= 1_000_000 else 100
check(f"peak RSS < {rss_mb} MB", peak_kb < rss_mb * 1024, f"{peak_kb / 1024:.1f} MB")
print()
for label, ok, detail in checks:
    print(f"{'PASS' if ok else 'FAIL'}  {label}" + (f"  ({detail})" if detail else ""))
failed = [label for label, ok, _ in checks if not ok]
print(f"\n{len(checks) - len(failed)} of {len(checks)} targets passed" + (": FAILED" if failed else ""))

if chart_path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import chart  # noqa: E402  (bench/chart.py: plain SVG text)
    title = (f"profiteer bench/run: {machine}; {users} users; wrk -t2 -c{conns} -d{duration}s; "
             f"ceiling {ceiling:.0f}/s, bcrypt bound {bound:.1f}/s")
    with open(chart_path, "w") as out:
        out.write(chart.svg(title, rows, reference, checks))
    print(f"chart: {chart_path}")

sys.exit(1 if failed else 0)
