#!/usr/bin/env python
"""Markdown tables from bench/results/*.json (the summaries loadtest.py --json writes).

bench/summarize.py bench/results            # capacity steps, big room, idle sockets
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt(v, nd=1):
    if v is None:
        return "\u2013"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def main(argv) -> int:
    folder = Path(argv[1] if len(argv) > 1 else Path(__file__).parent / "results")
    results = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}

    print("### Capacity (10 rooms x 20 members), one step per row\n")
    print(
        "| layer | commit | offered msg/s | deliveries/s | p50 ms | p99 ms | max ms | lost | dup | ooo | "
        "rejected | server CPU % | server runqueue wait % | other processes CPU % | server CPU µs/msg | pass |"
    )
    print("|" + "---|" * 16)
    for name, r in results.items():
        if r.get("mode") != "capacity":
            continue
        layer = r.get("meta", {}).get("layer", name.split("-")[0])
        commit = r.get("meta", {}).get("server_commit", "?")
        for s in r.get("steps", []):
            print(
                f"| {layer} | {commit} | {fmt(s['offered_msgs_per_s'])} | {fmt(s['delivered_per_s'])} | "
                f"{fmt(s['latency_p50_ms'])} | {fmt(s['latency_p99_ms'])} | {fmt(s['latency_max_ms'])} | "
                f"{fmt(s['lost'])} | {fmt(s['duplicated'])} | {fmt(s['out_of_order'])} | {fmt(s['rejected'])} | "
                f"{fmt(s.get('server_cpu_pct'))} | {fmt(s.get('server_runqueue_wait_pct'))} | "
                f"{fmt(s.get('other_processes_cpu_pct'))} | {fmt(s.get('server_cpu_us_per_accepted_msg'), 0)} | "
                f"{'yes' if s.get('passed') else 'no'} |"
            )

    print("\n### One room of 500 members, 20 msg/s\n")
    print(
        "| layer | commit | connect all (s) | failed handshakes | KiB/socket | sent | accepted | unanswered | "
        "deliveries/s | p50 ms | p99 ms | max ms | lost (of accepted) | dup | ooo | server CPU % | "
        "runqueue wait % | server CPU µs/delivery |"
    )
    print("|" + "---|" * 18)
    for name, r in results.items():
        if r.get("mode") != "run":
            continue
        c, s = r["connect"], r["result"]
        layer = r.get("meta", {}).get("layer", name.split("-")[0])
        commit = r.get("meta", {}).get("server_commit", "?")
        print(
            f"| {layer} | {commit} | {fmt(c['connect_all_s'])} | {fmt(c['failed_handshakes'])} | "
            f"{fmt(c.get('server_kib_per_socket'))} | {fmt(s['sent'])} | {fmt(s['accepted'])} | "
            f"{fmt(s['unanswered'])} | {fmt(s['delivered_per_s'])} | {fmt(s['latency_p50_ms'])} | "
            f"{fmt(s['latency_p99_ms'])} | {fmt(s['latency_max_ms'])} | {fmt(s['lost'])} "
            f"({fmt(s.get('lost_of_accepted'))}) | {fmt(s['duplicated'])} | {fmt(s['out_of_order'])} | "
            f"{fmt(s.get('server_cpu_pct'))} | {fmt(s.get('server_runqueue_wait_pct'))} | "
            f"{fmt(s.get('server_cpu_us_per_delivery'))} |"
        )

    print("\n### 10,000 idle sockets (100 rooms x 100), then all closed at once\n")
    print(
        "| layer | commit | connected | failed | failure kinds | connect all (s) | KiB/socket | "
        "server CPU s | runqueue wait s | listen overflows | Redis entries while open | left behind 10 s after close (and later) |"
    )
    print("|" + "---|" * 12)
    for name, r in results.items():
        if r.get("mode") != "idle":
            continue
        c = r["connect"]
        layer = r.get("meta", {}).get("layer", name.split("-")[0])
        commit = r.get("meta", {}).get("server_commit", "?")
        kinds = "; ".join(f"{k[:48]}: {v}" for k, v in c.get("failures", {}).items())
        later = r.get("redis_left_behind_after_recheck")
        left = f"{r.get('redis_left_behind')}" + (
            f"; after {r.get('recheck_after_s', 0):.0f} s: {later}" if later is not None else ""
        )
        print(
            f"| {layer} | {commit} | {fmt(c['connected'])} | {fmt(c['failed_handshakes'])} | {kinds} | "
            f"{fmt(c['connect_all_s'])} | {fmt(c.get('server_kib_per_socket'))} | "
            f"{fmt(c.get('server_cpu_s_during_connect'))} | {fmt(c.get('server_runqueue_wait_s_during_connect'))} | "
            f"{fmt(c.get('listen_queue_overflows'))} | {r.get('redis_connected', {}).get('entries_by_kind')} | "
            f"{left} |"
        )
    compare = sorted((folder / "compare").glob("*.json")) if (folder / "compare").is_dir() else []
    if compare:
        print("\n### Interleaved layer comparison (bench/compare_layers.sh)\n")
        print(
            "| run | layer | commit | connect + join (s) | failed | p50 ms | p99 ms | lost | unanswered | "
            "server CPU µs/delivery | runqueue wait % | others' CPU % |"
        )
        print("|" + "---|" * 12)
        for p in compare:
            r = json.loads(p.read_text())
            c, s = r["connect"], r["result"]
            m = r.get("meta", {})
            print(
                f"| {p.stem} | {m.get('layer', '?')} | {m.get('server_commit', '?')} | {fmt(c['connect_all_s'])} | "
                f"{fmt(c['failed_handshakes'])} | {fmt(s['latency_p50_ms'])} | {fmt(s['latency_p99_ms'])} | "
                f"{fmt(s['lost'])} | {fmt(s['unanswered'])} | {fmt(s.get('server_cpu_us_per_delivery'))} | "
                f"{fmt(s.get('server_runqueue_wait_pct'))} | {fmt(s.get('other_processes_cpu_pct'))} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
