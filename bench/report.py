#!/usr/bin/env python3
"""Prints the benchmark table from bench/run's results, with each target's
PASS/FAIL (or SKIP when a subset was run), draws the run as an SVG chart,
and exits 1 if any target failed.

Every scenario ran one or more times (BENCH_REPS rounds, 3 by default), each
run recorded with its round (GROUP/N). A ratio target pairs the two
scenarios' runs of the same round (they ran one after the other), takes
each round's ratio, and judges the median; a latency or rate target judges
the median of the runs. Each target's line shows the value judged and the
spread (min-max) of what it is the median of.

Usage: report.py results.jsonl floods.jsonl verify_ms hash_workers
peak_rss_kb duration connections [chart.svg]
Environment: BENCH_USERS (seeded accounts; 1M raises the RSS budget),
BENCH_SELECTED (the scenarios run, empty: all; targets needing others are
SKIPped), BENCH_PEER (0: better-auth skipped, its target SKIPped),
BENCH_BCRYPT_DURATION, BENCH_REPS, BENCH_FAST_REPS and BENCH_FAST_DURATION
(the ceiling group's and the big reads'), BENCH_WALL_S (for the header),
BENCH_ATTACKS (bench/attack.rs's lines), BENCH_ATTACK_PEAK_KB."""
import json
import math
import os
import platform
import statistics
import subprocess
import sys

results_path, floods_path, verify_ms, hash_workers, peak_kb, duration, conns = sys.argv[1:8]
chart_path = sys.argv[8] if len(sys.argv) > 8 else None
verify_ms, hash_workers, peak_kb = float(verify_ms), int(hash_workers), int(peak_kb)
users = int(os.environ.get("BENCH_USERS", "100000"))
selected = set(os.environ.get("BENCH_SELECTED", "").split())
if os.environ.get("BENCH_PEER", "1") != "1":
    deselected = {"peer_sign_in", "peer_get_session"}
else:
    deselected = set()
NAN = float("nan")
IMPORT_TARGET = 5000  # rows/s of user.import with password_hash, batches of 1,000


def chosen(name):
    """Whether bench/run was asked to run this scenario."""
    return name not in deselected and (not selected or name in selected)


runs = {}  # name -> [run], in the order first seen
for line in open(results_path):
    if not line.strip():
        continue
    r = json.loads(line)
    res = r["result"]
    secs = res["duration_us"] / 1e6 or NAN
    runs.setdefault(r["name"], []).append({
        "round": r.get("round", ""),
        "conns": r.get("conns", int(conns)),
        "rps": res["requests"] / secs,
        "ok_rps": (res["requests"] - res["rpc_errors"]) / secs,
        "units_rps": res.get("units", 0) / secs,
        # A run with no answer has no latency (wrk prints 0): left out.
        "p50": res["p50_us"] / 1000 if res["requests"] else None,
        "p99": res["p99_us"] / 1000 if res["requests"] else None,
        "errors": res["rpc_errors"] + res["socket_errors"],
        "shed": res["shed"],
    })
floods = []
try:
    floods = [json.loads(line) for line in open(floods_path) if line.strip()]
except (OSError, ValueError):
    pass


def median(vals):
    return statistics.median(vals) if vals else NAN


def values(name, key="rps"):
    return [r[key] for r in runs.get(name, []) if r[key] is not None]


def med(name, key="rps"):
    return median(values(name, key))


def paired(a, b, ka="rps", kb="rps", scale=1.0):
    """a's rate over b's, for each round in which both ran."""
    by_round = {r["round"]: r for r in runs.get(b, [])}
    out = []
    for r in runs.get(a, []):
        rb = by_round.get(r["round"])
        if rb is not None and rb[kb] > 0:
            out.append(scale * r[ka] / rb[kb])
    return out


def pct(x):
    return "n/a" if math.isnan(x) else f"{x:.0%}"


def ms(x):
    return "n/a" if math.isnan(x) else f"{x:.1f} ms"


def spread(vals, fmt):
    """The value judged (the median) and the spread of what it is the median of."""
    if not vals:
        return "unmeasured"
    if len(vals) == 1:
        return f"{fmt(vals[0])}, 1 run"
    return f"{fmt(median(vals))}; min-max {fmt(min(vals))}-{fmt(max(vals))} of {len(vals)}"


# Each call costs one bcrypt hash or verification: compared with the bound.
BCRYPT = ("login", "register", "create_user_rpc", "create_user_thrift")
# What each scenario's ratio in the table is taken against (as in bench/run's
# refs_of): (reference, key of the scenario, key of the reference, label).
REF = {
    "ping": ("ceiling", "rps", "rps", "ceiling"),
    "introspect_hit": ("ceiling", "rps", "rps", "ceiling"),
    "user_get_cached": ("ceiling", "rps", "rps", "ceiling"),
    "ping_c1000": ("ping", "rps", "rps", f"-c{conns}"),
    "introspect_hit_c1000": ("introspect_hit", "rps", "rps", f"-c{conns}"),
    "user_get_uncached": ("bare_pair", "ok_rps", "ok_rps", "bare_pair"),
    "introspect_miss": ("bare_pg", "ok_rps", "ok_rps", "bare_pg"),
    "introspect_under_flood": ("introspect_base", "rps", "rps", "unloaded"),
    "introspect_under_create_flood": ("introspect_base", "rps", "rps", "unloaded"),
}
for _name in BCRYPT:
    REF[_name] = ("bcrypt_bound", "ok_rps", "rps", "bcrypt")
for _name in list(runs):
    if _name.startswith("ping_under_") and not _name.endswith("_base"):
        REF[_name] = (f"{_name}_base", "rps", "rps", "base")

bound_runs = values("bcrypt_bound")
bound_seed = hash_workers * 1000 / verify_ms
bound = median(bound_runs)
machine = (f"{platform.node()} {platform.machine()}, "
           f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores")
reps = os.environ.get("BENCH_REPS", "3")
fast_reps = os.environ.get("BENCH_FAST_REPS", reps)
fast_d = os.environ.get("BENCH_FAST_DURATION", duration)
bcrypt_d = os.environ.get("BENCH_BCRYPT_DURATION", duration)
wall = os.environ.get("BENCH_WALL_S")
print(f"machine: {machine}; {users} users; wrk -t2 -c{conns} -d{duration}s (other -c in the c column; "
      f"bcrypt-bound scenarios and their bound -d{bcrypt_d}s); {reps} interleaved rounds "
      f"({fast_reps} of -d{fast_d}s for the ceiling group and the big reads)"
      + (f"; {int(wall) // 60} min {int(wall) % 60} s in all" if wall else ""))
print(f"bcrypt cost 12: one verify {verify_ms:.0f} ms when seeding ({hash_workers} / {verify_ms:.0f} ms "
      f"= {bound_seed:.1f}/s); the bound measured in turn with each bcrypt scenario "
      f"(bench/bare.rs bcrypt, {hash_workers} threads): {spread(bound_runs, lambda x: f'{x:.1f}/s')}")
print("each row: medians over the runs (n); errors summed; ratio: the median of the rounds' "
      "ratios to the reference, [min-max]")
print()
print(f"| {'scenario':<29} | {'c':>4} | {'n':>2} | {'req/s':>9} | {'ok/s':>9} | {'p50 ms':>7} | {'p99 ms':>7} "
      f"| {'errors':>7} | {'ratio':<30} |")
print(f"|{'-'*31}|{'-'*6}|{'-'*4}|{'-'*11}|{'-'*11}|{'-'*9}|{'-'*9}|{'-'*9}|{'-'*32}|")


def table_ratio(name):
    if name == "import_hashes":
        v = [x / IMPORT_TARGET for x in values(name, "units_rps")]
        label = f"{med(name, 'units_rps'):,.0f} rows/s"
    elif name in REF:
        ref, ka, kb, label = REF[name]
        v = paired(name, ref, ka, kb)
    else:
        return ""
    if not v:
        return ""
    return f"{median(v):4.0%} [{min(v):.0%}-{max(v):.0%}] {label}"


def rate(x):
    return f"{x:9.1f}" if x < 100 else f"{x:9.0f}"


for name, rs in runs.items():
    print(f"| {name:<29} | {rs[0]['conns']:4d} | {len(rs):2d} | {rate(med(name))} | {rate(med(name, 'ok_rps'))} "
          f"| {med(name, 'p50'):7.2f} | {med(name, 'p99'):7.2f} | {sum(values(name, 'errors')):7d} "
          f"| {table_ratio(name):<30} |")
print()
for f in floods:
    fl = f["flood"]
    print(f"{fl.get('mode', 'login')} flood with {f['name']} ({f['round']}): "
          f"{fl['sent'] / fl['seconds']:.0f}/s offered for {fl['seconds']} s: "
          f"{fl['ok']} ok (p99 {fl['ok_p99_ms']:.0f} ms), {fl['shed']} shed with -32002 "
          f"(p50 {fl['shed_p50_ms']:.1f} ms, p99 {fl['shed_p99_ms']:.1f} ms), {fl['other']} other"
          + (" (" + ", ".join(f"{k}: {v}" for k, v in fl.get("other_by", {}).items()) + ")"
             if fl.get("other_by") else ""))
print(f"server peak RSS (VmHWM, largest over the run's server processes): {peak_kb / 1024:.1f} MB")

checks = []  # (label, "PASS" | "FAIL" | "SKIP", detail)


def check(label, ok, detail="", needs=()):
    """A target; SKIP (not judged) when a scenario it needs was not asked for."""
    missing = [n for n in needs if not chosen(n)]
    if missing:
        checks.append((label, "SKIP", "not run: " + ", ".join(missing)))
    else:
        checks.append((label, "PASS" if ok else "FAIL", detail))


def ratio_target(label, a, b, at_least, ka="rps", kb="rps", scale=1.0, fmt=pct):
    v = paired(a, b, ka, kb, scale)
    check(label, median(v) >= at_least, spread(v, fmt), needs=(a, b))


def p99_target(name, under, label=None):
    v = values(name, "p99")
    check(label or f"{name} p99 < {under} ms", median(v) < under, spread(v, ms), needs=(name,))


def no_errors(name):
    check(f"{name} no errors", sum(values(name, "errors")) == 0 and runs.get(name),
          f"{sum(values(name, 'errors'))}", needs=(name,))


ratio_target("ping >= 90% of ceiling", "ping", "ceiling", 0.9)
for name in ("introspect_hit", "user_get_cached"):
    ratio_target(f"{name} >= 60% of ceiling", name, "ceiling", 0.6)
    p99_target(name, 10)
ratio_target("user.gets x100 users/s >= 10x uncached user.get", "user_gets100_uncached",
             "user_get_uncached", 10, "ok_rps", "ok_rps", 100, lambda x: f"{x:.0f}x")
ratio_target("user_get_uncached >= 50% of bare_pair", "user_get_uncached", "bare_pair", 0.5,
             "ok_rps", "ok_rps")
ratio_target("introspect_miss >= 70% of bare_pg", "introspect_miss", "bare_pg", 0.7, "ok_rps", "ok_rps")
p99_target("user_search_prefix", 20, "user.search by prefix p99 < 20 ms")
p99_target("user_gets1000", 250, "user.gets of 1,000 ids p99 < 250 ms")
for name in ("ping", "introspect_hit"):
    wide = f"{name}_c1000"
    ratio_target(f"{wide} >= 80% of -c{conns}", wide, name, 0.8)
    p99_target(wide, 100)
    no_errors(wide)
# Scenarios where any error is a defect (others refuse on purpose).
CLEAN = ("ping", "introspect_hit", "introspect_miss", "authorize", "user_get_cached",
         "user_get_uncached", "user_gets100_uncached", "mixed", "bare_pair", "bare_pg",
         "user_search_prefix", "user_gets1000", "bcrypt_bound")
for name in CLEAN:
    if sum(values(name, "errors")):
        check(f"{name} no errors", False, f"{sum(values(name, 'errors'))}")
for name, label in (("login", "auth.login"), ("register", "auth.register"),
                    ("create_user_rpc", "user.import of one row with a password"),
                    ("create_user_thrift", "Thrift createUser")):
    ratio_target(f"{label} ok/s >= 85% of the bcrypt bound", name, "bcrypt_bound", 0.85, "ok_rps", "rps")
ratio_target("introspect under 4x login flood >= 70% of unloaded", "introspect_under_flood",
             "introspect_base", 0.7)
ratio_target("introspect under 4x create (auth.register) flood >= 70% of unloaded",
             "introspect_under_create_flood", "introspect_base", 0.7)
for scenario, what in (("introspect_under_flood", "login"), ("introspect_under_create_flood", "create")):
    fl = [f["flood"] for f in floods if f["name"] == scenario]
    offered = [f["sent"] / f["seconds"] / bound_seed for f in fl]
    check(f"{what} flood: 4x the bound offered", median(offered) >= 3.5,
          spread(offered, lambda x: f"{x:.1f}x"), needs=(scenario,))
    if what == "login":
        shed = [f["shed_p99_ms"] for f in fl]
        check("login flood: excess logins shed, p99 < 50 ms",
              fl and all(f["shed"] > 0 for f in fl) and median(shed) < 50,
              f"{sum(f['shed'] for f in fl)} shed; p99 " + spread(shed, ms), needs=(scenario,))
v = values("import_hashes", "units_rps")
check(f"user.import with password_hash >= {IMPORT_TARGET:,} rows/s (batches of 1,000)",
      median(v) >= IMPORT_TARGET, spread(v, lambda x: f"{x:,.0f}/s"), needs=("import_hashes",))
check("introspect ahead of better-auth get-session", med("introspect_hit") > med("peer_get_session"),
      f"{med('introspect_hit'):.0f} vs {med('peer_get_session'):.0f}/s",
      needs=("introspect_hit", "peer_get_session"))
# The edge under attack (bench/attack.rs): ping keeps >= 80% of the rate it
# had just before the attack (NAME_base), and p99 < 50 ms.
ATTACKS = ("ping_under_idle", "ping_under_header_trickle", "ping_under_body_trickle",
           "ping_under_expect_stall")
for name in ATTACKS:
    ratio_target(f"{name} >= 80% of {name}_base", name, f"{name}_base", 0.8)
    p99_target(name, 50)
try:
    attacks = [json.loads(line) for line in open(os.environ.get("BENCH_ATTACKS", "")) if line.strip()]
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
for label, status, detail in checks:
    if status != "SKIP":
        print(f"{status}  {label}" + (f"  ({detail})" if detail else ""))
failed = [label for label, status, _ in checks if status == "FAIL"]
skipped = [label for label, status, _ in checks if status == "SKIP"]
if skipped:
    print(f"SKIP  {len(skipped)} targets whose scenarios were not asked for: " + "; ".join(skipped))
judged = len(checks) - len(skipped)
print(f"\n{judged - len(failed)} of {judged} targets passed"
      + (f" ({len(skipped)} skipped)" if skipped else "") + (": FAILED" if failed else ""))


def shares(name):
    """(kind, [share per run], rate label) for the chart, or None: bcrypt
    scenarios against the bound of their round, import_hashes against its
    target, the rest against the ceiling of their round when they ran in
    turn with it, else against the ceiling's median."""
    if name.startswith("peer_"):
        return None
    if name in BCRYPT:
        return "bcrypt", paired(name, "bcrypt_bound", "ok_rps", "rps"), f"{med(name, 'ok_rps'):,.1f} ok/s"
    if name == "bcrypt_bound":
        return "bcrypt", [x / bound for x in values(name)], f"{bound:,.1f}/s"
    if name == "ceiling":
        return "ceiling", [x / med(name) for x in values(name)], f"{med(name):,.0f}/s"
    if name == "import_hashes":
        return ("target", [x / IMPORT_TARGET for x in values(name, "units_rps")],
                f"{med(name, 'units_rps'):,.0f} rows/s")
    ceiling = med("ceiling")
    if math.isnan(ceiling):
        return None
    v = paired(name, "ceiling") or [x / ceiling for x in values(name)]
    return "ceiling", v, f"{med(name):,.0f}/s"


if chart_path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import chart  # noqa: E402  (bench/chart.py: plain SVG text)
    bars = []
    for name, rs in runs.items():
        s = shares(name)
        p99 = values(name, "p99")
        bars.append({
            "name": name, "conns": rs[0]["conns"], "runs": len(rs),
            "kind": s[0] if s and s[1] else None,
            "share": (median(s[1]), min(s[1]), max(s[1])) if s and s[1] else None,
            "rate": s[2] if s else f"{med(name):,.0f}/s",
            "p99": (median(p99), min(p99), max(p99)) if p99 else None,
        })
    title = (f"profiteer bench/run: {machine}; {users} users; wrk -t2 -c{conns} -d{duration}s, "
             f"{reps} interleaved rounds; ceiling {med('ceiling'):.0f}/s, bcrypt bound {bound:.1f}/s (medians)")
    with open(chart_path, "w") as out:
        out.write(chart.svg(title, bars, [c for c in checks if c[1] != "SKIP"], len(skipped)))
    print(f"chart: {chart_path}")

sys.exit(1 if failed else 0)
