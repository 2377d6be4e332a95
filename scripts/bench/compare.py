#!/usr/bin/env python3
"""scripts/bench/compare.py -- yubin against Postfix, from one benchmark log.

Usage: compare.py [--strict] LOGFILE

Reads the summary lines that scripts/bench.sh collected, in the format of the
shared harness (``<mta> <test>: N=.. conc=.. size=.. key=value ...``), pairs
the yubin runs (one node) and the yubin-cluster runs (three nodes on the same
machine, scripts/bench/cluster) of each case (test, N, conc, size) with the
Postfix runs of that case and prints a Markdown table: median messages/s of
each, the ratio to Postfix of the medians, the target ratio and whether it
was met. The cluster's time to 250 (p50/p99 of its probe) and its failover
runs get tables of their own.

The figure compared is accept_msgs_per_s for accept-only (the message is on
disk when the 250 is sent) and e2e_msgs_per_s for relay (until the sink has
every message).  A run counts as failed when its line says FAILED or TIMEOUT,
or when its checks do not hold: accept-only needs held == N (and, for yubin,
held_after_restart == N, the count after a SIGKILL and restart); relay needs
queue_after == 0.

Exit status: 0, or 1 when a run failed or a case lacks runs of either MTA;
with --strict also 3 when a target was missed.
"""
import re
import statistics
import sys

LINE = re.compile(r"^(?P<mta>[A-Za-z0-9_.\-]+) (?P<test>[A-Za-z0-9_.\-]+): (?P<rest>N=\d+ .*)$")
KV = re.compile(r"(\w+)=(\S+)")
METRIC = {"accept-only": "accept_msgs_per_s", "relay": "e2e_msgs_per_s"}
# Target ratios to single-node Postfix; None: reported, no target.
TARGET = {
    ("yubin", "accept-only"): 1.5,
    ("yubin", "relay"): 1.2,
    ("yubin-cluster", "accept-only"): 1.0,
    ("yubin-cluster", "relay"): None,
}
MTAS = ("postfix", "yubin", "yubin-cluster")


def number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check(test, kv, raw):
    """Returns why a run does not count, or None when it does."""
    if "FAILED" in raw or "TIMEOUT" in raw:
        return "failed"
    if number(kv.get(METRIC[test])) is None:
        return "no " + METRIC[test]
    n = kv["N"]
    if test == "accept-only":
        want = kv.get("want", n)  # the cluster also holds its probe's messages
        if kv.get("held") != want:
            return f"held={kv.get('held')} of {want}"
        if "held_after_restart" in kv and kv["held_after_restart"] != n:
            return f"held_after_restart={kv['held_after_restart']} of {n}"
    if test == "relay" and kv.get("queue_after", "0") != "0":
        return f"queue_after={kv['queue_after']}"
    return None


def read(path):
    """Returns {case: {mta: {"rates": [...], "problems": [...]}}} and the case order."""
    cases, order = {}, []
    with open(path) as fh:
        for raw in fh:
            m = LINE.match(raw.strip())
            if not m or m.group("test") not in METRIC or m.group("mta") not in MTAS:
                continue
            test = m.group("test")
            kv = dict(KV.findall(m.group("rest")))
            try:
                case = (test, int(kv["N"]), int(kv["conc"]), int(kv["size"]))
            except (KeyError, ValueError):
                continue
            if case not in cases:
                cases[case] = {mta: {"rates": [], "problems": [], "kv": []} for mta in MTAS}
                order.append(case)
            slot = cases[case][m.group("mta")]
            problem = check(test, kv, raw)
            if problem:
                slot["problems"].append(problem)
            else:
                slot["rates"].append(number(kv[METRIC[test]]))
                slot["kv"].append(kv)
    return cases, order


def cell(slot):
    rates = slot["rates"]
    if not rates:
        return "-", None
    med = statistics.median(rates)
    text = f"{med:.1f}"
    if len(rates) > 1:
        text += f" ({min(rates):.0f}-{max(rates):.0f})"
    text += f" [{len(rates)} ok"
    text += f", {len(slot['problems'])} failed]" if slot["problems"] else "]"
    return text, med


def median_of(kvs, key):
    vals = [number(kv.get(key)) for kv in kvs]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def failover_table(path):
    """Prints the cluster's failover runs; returns 1 when one lost mail."""
    runs = []
    with open(path) as fh:
        for raw in fh:
            m = LINE.match(raw.strip())
            if m and m.group("mta") == "yubin-cluster" and m.group("test") == "failover":
                runs.append((dict(KV.findall(m.group("rest"))), raw))
    if not runs:
        return 0
    print()
    print("Cluster failover (kill -9 of the leader under load, restarted after the load):")
    print()
    print("| run | N | nodes | acknowledged | lost | duplicates | deliveries in flight at the kill "
          "| duplicates per 1000 in flight | queued at the kill | deliveries resumed after (s) "
          "| longest stall (s) | time to 250 p50/p99 (ms) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    status = 0
    for i, (kv, raw) in enumerate(runs, 1):
        failed = "FAILED" in raw or kv.get("lost", "0") != "0"
        status |= failed
        print(f"| {i}{' FAILED' if failed else ''} | {kv.get('N')} | {kv.get('nodes')} | {kv.get('acked')} "
              f"| {kv.get('lost')} | {kv.get('duplicates')} | {kv.get('deliveries_in_flight')} "
              f"| {kv.get('dups_per_1000_in_flight')} | {kv.get('queued_at_kill')} | {kv.get('resume_s')} "
              f"| {kv.get('longest_stall_s')} | {kv.get('p50_ms')}/{kv.get('p99_ms')} |")
    return status


def main(argv):
    strict = "--strict" in argv
    files = [a for a in argv if a != "--strict"]
    if len(files) != 1:
        sys.exit(__doc__)
    cases, order = read(files[0])
    if not order:
        print("compare: no yubin/postfix summary lines in " + files[0], file=sys.stderr)
        return 1
    status, missed = 0, 0
    print("| setup | test | N | conc | size (B) | metric | postfix msgs/s median (min-max) [runs] "
          "| yubin msgs/s median (min-max) [runs] | yubin/postfix | target | result |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---|")
    latency = []
    for case in order:
        test, n, conc, size = case
        pf_text, pf = cell(cases[case]["postfix"])
        for mta in MTAS[1:]:
            slot = cases[case][mta]
            if not slot["rates"] and not slot["problems"]:
                continue  # this setup did not run this case
            yb_text, yb = cell(slot)
            target = TARGET[(mta, test)]
            problems = [f"{who}: {p}" for who in ("postfix", mta) for p in cases[case][who]["problems"]]
            if pf is None or yb is None or pf <= 0:
                ratio, result = "-", "NO DATA"
                status = 1
            else:
                r = yb / pf
                ratio = f"{r:.2f}x"
                if target is None:
                    result = "reported"
                else:
                    result = "met" if r >= target else "MISSED"
                    missed += result == "MISSED"
            if problems:
                status = 1
                result += " (" + "; ".join(sorted(set(problems))) + ")"
            metric = "accept" if test == "accept-only" else "e2e"
            setup = "1 node" if mta == "yubin" else "3 nodes"
            goal = "-" if target is None else f">= {target}x"
            print(f"| {setup} | {test} | {n} | {conc} | {size} | {metric} | {pf_text} | {yb_text} | {ratio} "
                  f"| {goal} | {result} |")
            if mta == "yubin-cluster" and test == "accept-only" and slot["kv"]:
                latency.append((case, slot["kv"]))
    print()
    print("Targets: one node accept-only >= 1.5x Postfix, relay (end to end) >= 1.2x Postfix; "
          "three nodes accept-only >= 1.0x single-node Postfix; "
          f"{missed} case(s) missed.")
    if latency:
        print()
        print("Cluster time from the end of DATA to the 250 (probe connection beside the load; medians over runs):")
        print()
        print("| N | conc | size (B) | p50 (ms) | p99 (ms) | probe messages per run |")
        print("|---:|---:|---:|---:|---:|---:|")
        for (test, n, conc, size), kvs in latency:
            print(f"| {n} | {conc} | {size} | {fmt(median_of(kvs, 'p50_ms'))} | {fmt(median_of(kvs, 'p99_ms'))} "
                  f"| {fmt(median_of(kvs, 'probe_msgs'), 0)} |")
    status |= failover_table(files[0])
    if status == 0 and strict and missed:
        status = 3
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
