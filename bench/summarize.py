#!/usr/bin/env python
"""The comparison table of one bench/run_all.sh run: chatsite against the Socket.IO peer.

    bench/summarize.py bench/out/<run>          # the folder run_all.sh wrote (TARGET-SCENARIO.json)

Prints markdown: one table of the issue-9 measures (chatsite, Socket.IO in memory, Socket.IO
persisted, the ratio, the target), then how contended each run was, then every capacity step.
Missing runs show as a dash. docs/benchmarks.md ("Method") says what each figure is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TARGETS = ("chatsite", "socketio", "socketio-pg", "socketio-pg-each")
LABELS = {
    "chatsite": "chatsite",
    "socketio": "Socket.IO, in memory",
    "socketio-pg": "Socket.IO, persisted (group commit)",
    "socketio-pg-each": "Socket.IO, persisted (INSERT per message)",
}
# The ratio's denominator: the peer doing the same work as chatsite, every message persisted.
PEER = "socketio-pg"
DASH = "\u2013"


def fmt(v, nd=1) -> str:
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def load(folder: Path) -> dict[tuple[str, str], dict]:
    runs = {}
    for p in sorted(folder.glob("*.json")):
        try:
            r = json.loads(p.read_text())
        except ValueError:
            continue
        meta = r.get("meta", {})
        target, scenario = meta.get("target"), meta.get("scenario")
        if target and scenario:
            runs[target, scenario] = r
    return runs


def capacity_best(r: dict | None) -> dict | None:
    """The last passing capacity step (the highest passing rate: bisection steps come after the ramp)."""
    if not r:
        return None
    passing = [s for s in r.get("steps", []) if s.get("passed")]
    return max(passing, key=lambda s: s["offered_msgs_per_s"]) if passing else None


def measures(runs: dict, target: str) -> dict[str, object]:
    """The issue-9 figures of one target, raw numbers (None when not measured)."""
    m: dict[str, object] = {}
    best = capacity_best(runs.get((target, "capacity")))
    m["cap_deliveries"] = best["delivered_per_s"] if best else None
    m["cap_msgs"] = best["offered_msgs_per_s"] if best else None
    m["cap_p99"] = best["latency_p99_ms"] if best else None
    m["cap_p50"] = best["latency_p50_ms"] if best else None
    m["cap_tool_cpu"] = best["client_cpu_pct"] if best else None
    m["cap_cpu_per_msg"] = best.get("server_cpu_us_per_accepted_msg") if best else None
    # Deliveries per second of a whole core at that step's CPU cost: what the server would carry
    # if the machine gave it its core and nothing else limited it (robust to contention).
    us = best.get("server_cpu_us_per_delivery") if best else None
    m["cap_per_core"] = round(1e6 / us) if us else None
    cap = runs.get((target, "capacity"))
    m["cap_first_fail"] = next((s for s in (cap or {}).get("steps", []) if not s.get("passed")), None)
    big = runs.get((target, "big"), {}).get("result")
    m["big_p50"] = big["latency_p50_ms"] if big else None
    m["big_p99"] = big["latency_p99_ms"] if big else None
    m["big_lost"] = (big["lost"] + big["unanswered"] + big["duplicated"] + big["out_of_order"]) if big else None
    per_delivery = None
    if big:
        per_delivery = big.get("server_cpu_us_per_delivery_net", big.get("server_cpu_us_per_delivery"))
    m["cpu_per_delivery"] = per_delivery
    solo = runs.get((target, "solo"), {}).get("result")
    per_msg = (
        solo.get("server_cpu_us_per_accepted_msg_net", solo.get("server_cpu_us_per_accepted_msg")) if solo else None
    )
    # a message of a one-member room has one delivery: take it off with the per-delivery cost
    m["cpu_per_msg"] = (per_msg - (per_delivery or 0.0)) if per_msg is not None else None
    idle = runs.get((target, "idle"))
    c = idle["connect"] if idle else None
    m["idle_connected"] = c["connected"] if c else None
    m["idle_sockets"] = c["sockets"] if c else None
    m["idle_s"] = c["connect_all_s"] if c else None
    m["idle_kib"] = c.get("server_kib_per_socket") if c else None
    m["idle_failed"] = c["failed_handshakes"] if c else None
    m["idle_cj_p50"] = c.get("connect_join_p50_ms") if c else None
    m["idle_cj_p99"] = c.get("connect_join_p99_ms") if c else None
    cpu_s = c.get("server_cpu_s_during_connect") if c else None
    # the server's CPU per socket over the burst: its cost of one connect + join
    m["idle_cpu_ms_per_socket"] = round(1000 * cpu_s / c["connected"], 2) if cpu_s and c["connected"] else None
    m["idle_left"] = idle.get("redis_left_behind") if idle else None
    m["idle_left_later"] = idle.get("redis_left_behind_after_recheck") if idle else None
    over = runs.get((target, "overload"), {}).get("result")
    m["over_rate"] = over["offered_msgs_per_s"] if over else None
    m["over_rejected"] = over.get("rejected_by_code") if over else None
    m["over_silent"] = (over["unanswered"] + over["lost_of_accepted"]) if over else None
    m["over_p99"] = over["latency_p99_ms"] if over else None
    m["over_tool_saturated"] = over.get("client_saturated") if over else None
    return m


def refused(by_code: dict | None) -> str:
    if by_code is None:
        return DASH
    return ", ".join(f"{fmt(n)} {code}" for code, n in by_code.items()) or "none refused"


def ratio(a, b) -> str:
    if a is None or not b:
        return DASH
    return f"{a / b:.3f}\u00d7"


def main(argv) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    folder = Path(argv[1])
    runs = load(folder)
    targets = [t for t in TARGETS if any(k[0] == t for k in runs)]
    ms = {t: measures(runs, t) for t in targets}
    cs, peer, mem = ms.get("chatsite", {}), ms.get(PEER, {}), ms.get("socketio", {})
    any_run = next(iter(runs.values()), {})
    meta = any_run.get("meta", {})
    print(
        f"Run `{folder.name}`: server commit {meta.get('server_commit', '?')}"
        f"{' + uncommitted ' + meta['server_uncommitted'] if meta.get('server_uncommitted') else ''}, "
        f"chatsite layer {meta.get('layer', '?')}"
        f"{', server command ' + meta['server_cmd'] if meta.get('server_cmd') else ''}.\n"
    )
    cols = [LABELS[t] for t in targets]
    print("| measure (issue 9) | target | " + " | ".join(cols) + " | chatsite ÷ persisted peer (÷ in-memory) |")
    print("|---|---|" + "---|" * len(cols) + "---|")

    def row(name, target, key, nd=1, show=None, with_ratio=False):
        cells = [show(ms[t]) if show else fmt(ms[t].get(key), nd) for t in targets]
        r = f"{ratio(cs.get(key), peer.get(key))} ({ratio(cs.get(key), mem.get(key))})" if with_ratio and cs else DASH
        print(f"| {name} | {target} | " + " | ".join(cells) + f" | {r} |")

    row(
        "capacity, 10 rooms x 20: deliveries/s of the last passing step",
        "≥ 0.5 x persisted peer, p99 ≤ 200 ms, nothing lost",
        "cap_deliveries",
        0,
        with_ratio=True,
    )
    row(
        "… deliveries per CPU-second of the server at that step (1e6 / its CPU µs per delivery)",
        "",
        "cap_per_core",
        0,
        with_ratio=True,
    )
    row(
        "… its messages/s, p50 and p99 ms, tool's CPU %",
        "",
        "",
        show=lambda m: (
            f"{fmt(m['cap_msgs'])} msg/s, p50 {fmt(m['cap_p50'])}, p99 {fmt(m['cap_p99'])}, "
            f"tool {fmt(m['cap_tool_cpu'])} %"
        ),
    )
    row(
        "… first failing step",
        "",
        "",
        show=lambda m: (
            f"{fmt(f['offered_msgs_per_s'])} msg/s: p99 {fmt(f['latency_p99_ms'])}, lost {fmt(f['lost'])}, "
            f"unanswered {fmt(f['unanswered'])}" + (" (tool saturated)" if f.get("client_saturated") else "")
            if (f := m["cap_first_fail"])
            else DASH
        ),
    )
    row(
        "one room of 500 at 20 msg/s: p99 ms (p50)",
        "p99 ≤ 50 ms",
        "",
        show=lambda m: f"{fmt(m['big_p99'])} ({fmt(m['big_p50'])}), lost/dup/ooo {fmt(m['big_lost'])}",
    )
    row(
        "10,000 idle sockets: joined, seconds for all",
        "all, ≤ 10 s, none refused",
        "",
        show=lambda m: f"{fmt(m['idle_connected'])} of {fmt(m['idle_sockets'])} in {fmt(m['idle_s'])} s",
    )
    row(
        "… connect + join per socket in that burst, p50 (p99) ms",
        "",
        "",
        show=lambda m: f"{fmt(m['idle_cj_p50'])} ({fmt(m['idle_cj_p99'])})",
    )
    row("… server CPU ms per connect + join", "", "idle_cpu_ms_per_socket", 2, with_ratio=True)
    row("… KiB per socket", "≤ 24 KiB", "idle_kib", with_ratio=True)
    row(
        "… left in Redis after all closed at once (10 s; 45 s)",
        "nothing",
        "",
        show=lambda m: f"{fmt(m['idle_left'])}; {fmt(m['idle_left_later'])}" if m["idle_left"] is not None else "n/a",
    )
    row(
        "beyond capacity (1.5 x the rate its core could carry): rejected; silent loss (unanswered + lost)",
        "rate_limited, no silent loss",
        "",
        show=lambda m: (
            f"{fmt(m['over_rate'])} msg/s: {refused(m['over_rejected'])}; {fmt(m['over_silent'])}; "
            f"p99 {fmt(m['over_p99'])}" + (" (tool saturated)" if m["over_tool_saturated"] else "")
        ),
    )
    row("server CPU µs per delivery (500-room, net of idle)", "≤ 8 µs", "cpu_per_delivery", 2, with_ratio=True)
    row(
        "server CPU µs per accepted message, without its deliveries (one-member rooms)",
        "≤ 150 µs",
        "cpu_per_msg",
        with_ratio=True,
    )
    row("server CPU µs per message at the capacity step (20 deliveries each)", "", "cap_cpu_per_msg", with_ratio=True)

    print("\nContention during each run (the machine is shared; CPU figures are the robust ones):\n")
    print(
        "| target | scenario | before the run | server CPU % | server runqueue wait % | other processes CPU % "
        "(of 200) | tool CPU % | tool µs/delivery |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (target, scenario), r in sorted(runs.items(), key=lambda kv: (kv[0][1], TARGETS.index(kv[0][0]))):
        res = r.get("result") or capacity_best(r) or (r.get("steps") or [None])[-1] or {}
        c = r.get("connect", {})
        if scenario == "idle":
            wait, cpu = c.get("server_runqueue_wait_s_during_connect"), c.get("server_cpu_s_during_connect")
            print(
                f"| {target} | {scenario} | {r['meta'].get('before_run', DASH)} | {fmt(cpu)} s over the connects | "
                f"{fmt(wait)} s | {DASH} | {DASH} | {DASH} |"
            )
            continue
        print(
            f"| {target} | {scenario} | {r['meta'].get('before_run', DASH)} | {fmt(res.get('server_cpu_pct'))} | "
            f"{fmt(res.get('server_runqueue_wait_pct'))} | {fmt(res.get('other_processes_cpu_pct'))} | "
            f"{fmt(res.get('client_cpu_pct'))} | {fmt(res.get('client_cpu_us_per_delivery'), 2)} |"
        )

    print("\nCapacity steps (10 rooms x 20), in the order run:\n")
    print(
        "| target | offered msg/s | deliveries/s | p50 ms | p99 ms | lost | unanswered | dup | ooo | rejected | "
        "server CPU % | runqueue wait % | others' CPU % | tool CPU % | server µs/msg | pass |"
    )
    print("|" + "---|" * 16)
    for t in targets:
        for s in runs.get((t, "capacity"), {}).get("steps", []):
            print(
                f"| {t} | {fmt(s['offered_msgs_per_s'])} | {fmt(s['delivered_per_s'], 0)} | {fmt(s['latency_p50_ms'])} | "
                f"{fmt(s['latency_p99_ms'])} | {fmt(s['lost'])} | {fmt(s['unanswered'])} | {fmt(s['duplicated'])} | "
                f"{fmt(s['out_of_order'])} | {fmt(s['rejected'])} | {fmt(s.get('server_cpu_pct'))} | "
                f"{fmt(s.get('server_runqueue_wait_pct'))} | {fmt(s.get('other_processes_cpu_pct'))} | "
                f"{fmt(s['client_cpu_pct'])}{' (sat.)' if s.get('client_saturated') else ''} | "
                f"{fmt(s.get('server_cpu_us_per_accepted_msg'), 0)} | {fmt(s.get('passed'))} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
