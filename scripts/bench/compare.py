#!/usr/bin/env python3
"""scripts/bench/compare.py -- yubin against Postfix, from one benchmark log.

Usage: compare.py [--strict] LOGFILE

Reads the summary lines that scripts/bench.sh collected, in the format of the
shared harness (``<mta> <test>: N=.. conc=.. size=.. key=value ...``), pairs
the yubin and Postfix runs of each case (test, N, conc, size) and prints a
Markdown table: median messages/s of each, the ratio yubin/Postfix of the
medians, the target ratio and whether it was met.

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
TARGET = {"accept-only": 1.5, "relay": 1.2}
MTAS = ("postfix", "yubin")


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
        if kv.get("held") != n:
            return f"held={kv.get('held')} of {n}"
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
                cases[case] = {mta: {"rates": [], "problems": []} for mta in MTAS}
                order.append(case)
            slot = cases[case][m.group("mta")]
            problem = check(test, kv, raw)
            if problem:
                slot["problems"].append(problem)
            else:
                slot["rates"].append(number(kv[METRIC[test]]))
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
    print("| test | N | conc | size (B) | metric | postfix msgs/s median (min-max) [runs] "
          "| yubin msgs/s median (min-max) [runs] | yubin/postfix | target | result |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---|")
    for case in order:
        test, n, conc, size = case
        pf_text, pf = cell(cases[case]["postfix"])
        yb_text, yb = cell(cases[case]["yubin"])
        problems = [f"{mta}: {p}" for mta in MTAS for p in cases[case][mta]["problems"]]
        if pf is None or yb is None or pf <= 0:
            ratio, result = "-", "NO DATA"
            status = 1
        else:
            r = yb / pf
            ratio = f"{r:.2f}x"
            result = "met" if r >= TARGET[test] else "MISSED"
            missed += result == "MISSED"
        if problems:
            status = 1
            result += " (" + "; ".join(sorted(set(problems))) + ")"
        metric = "accept" if test == "accept-only" else "e2e"
        print(f"| {test} | {n} | {conc} | {size} | {metric} | {pf_text} | {yb_text} | {ratio} "
              f"| >= {TARGET[test]}x | {result} |")
    print()
    print("Targets: accept-only >= 1.5x Postfix, relay (end to end) >= 1.2x Postfix; "
          f"{missed} case(s) missed.")
    if status == 0 and strict and missed:
        status = 3
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
