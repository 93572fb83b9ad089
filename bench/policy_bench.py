"""Policy decision cost with 10, 1,000 and 10,000 rules: prints p50/p99 per decision (not a test).

    .venv/bin/python -m bench.policy_bench [--requests 2000] [--rounds 15]

Rules mix what real policies hold: per-workload exact tool grants (70%), namespace-wide glob grants (20%),
glob denies (5%) and argument-constrained grants (5%). Requests draw from principals and tools those rules
name, plus misses. The target is a flat curve: t(10k) / t(10) ≤ 1.5, p50 ≤ 3 µs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from mcpgate.identity.model import Principal
from mcpgate.policy import Policy, load_policy_text
from mcpgate.protocol.model import Direction, MessageKind, Operation, OpKind


@dataclass(frozen=True)
class Workload:
    policy: Policy
    requests: list[tuple[Principal, Operation]]


def principal(i: int) -> Principal:
    ns = f"team{i % 40}"
    return Principal(f"spiffe://cluster.local/ns/{ns}/sa/svc{i}", "mtls", "cluster.local", ns, f"svc{i}")


def build(n_rules: int, n_requests: int, seed: int = 7, distinct: int | None = None) -> Workload:
    rnd = random.Random(seed)
    lines = ["apiVersion: mcpgate.dev/v1", "kind: Policy", "rules:"]
    grants: list[tuple[int, str, dict[str, int] | None]] = []
    for r in range(n_rules):
        kind = rnd.random()
        who = rnd.randrange(max(1, n_rules // 3))
        if kind < 0.70:
            tool = f"tool_{rnd.randrange(n_rules * 2)}"
            who_id = principal(who).id
            lines.append(f"  - {{id: r{r}, effect: allow, principals: ['{who_id}'], tools: {tool}}}")
            grants.append((who, tool, None))
        elif kind < 0.90:
            prefix = f"read{rnd.randrange(max(1, n_rules // 10))}_"
            lines.append(f"  - {{id: r{r}, effect: allow, principals: [{{namespace: team{who % 40}}}], "
                         f"tools: '{prefix}*'}}")
            grants.append((who, prefix + "x", None))
        elif kind < 0.95:
            lines.append(f"  - {{id: r{r}, effect: deny, tools: 'danger{rnd.randrange(n_rules)}_*'}}")
        else:
            tool = f"pay_{rnd.randrange(n_rules)}"
            who_id = principal(who).id
            lines.append(f"  - {{id: r{r}, effect: allow, principals: ['{who_id}'], tools: {tool}, "
                         "arguments: {amount: {maximum: 100}}}")
            grants.append((who, tool, {"amount": 50}))
    policy = load_policy_text("\n".join(lines) + "\n", file=f"bench-{n_rules}.yaml")
    requests: list[tuple[Principal, Operation]] = []
    if distinct is not None:  # the same number of distinct requests at every size
        grants = grants[:max(1, int(distinct * 0.8))]
    for _ in range(n_requests):
        if grants and rnd.random() < 0.8:
            who, tool, args = rnd.choice(grants)
        else:
            misses = max(1, int(distinct * 0.2)) if distinct is not None else 1000
            who, tool, args = rnd.randrange(misses), f"unknown_{rnd.randrange(100)}", None
        op = Operation(OpKind.TOOL_CALL, "tools/call", MessageKind.REQUEST, Direction.CLIENT_TO_SERVER, 1,
                       tool, arguments=args)
        requests.append((principal(who), op))
    return Workload(policy, requests)


def _round(w: Workload, clock: Callable[[], int]) -> tuple[float, float]:
    """(p50 ns, p99 ns) of one pass over every request, less the timer's own cost measured just before."""
    decide = w.policy.decide
    for p, op in w.requests:  # untimed pass: the round starts warm, as steady traffic would (see measure)
        decide(p, op)
    empty = []
    for _ in range(2000):
        t0 = clock()
        empty.append(clock() - t0)
    overhead = statistics.median(empty)
    samples: list[int] = []
    for p, op in w.requests:
        t0 = clock()
        decide(p, op)
        samples.append(clock() - t0)
    samples.sort()
    return samples[len(samples) // 2] - overhead, samples[int(len(samples) * 0.99)] - overhead


def measure(ws: dict[int, Workload], rounds: int) -> dict[int, tuple[float, float, float]]:
    """{rules: (p50 ns, p99 ns, allowed fraction)}: medians of per-round percentiles, the sizes interleaved
    round by round so that load from other processes drifting over the run hits every size alike. Each
    round first runs its requests once untimed: without that, a round of the 10,000-rule policy would start
    with caches full of the previous size's data, which measures the interleaving, not the index."""
    clock = time.perf_counter_ns
    allowed: dict[int, float] = {}
    for n, w in ws.items():  # warm-up (and the decision cache, as steady traffic would)
        allowed[n] = sum(w.policy.decide(p, op).allowed for p, op in w.requests) / len(w.requests)
    per: dict[int, list[tuple[float, float]]] = {n: [] for n in ws}
    for _ in range(rounds):
        for n, w in ws.items():
            per[n].append(_round(w, clock))
    return {n: (statistics.median(r[0] for r in per[n]), statistics.median(r[1] for r in per[n]), allowed[n])
            for n in ws}


def table(title: str, requests: int, rounds: int, distinct: int | None) -> None:
    print(title)
    ws: dict[int, Workload] = {}
    compile_s: dict[int, float] = {}
    for n in (10, 1_000, 10_000):
        t0 = time.perf_counter()
        ws[n] = build(n, requests, distinct=distinct)
        compile_s[n] = time.perf_counter() - t0
    results = measure(ws, rounds)
    print(f"{'rules':>7} {'compile':>9} {'p50':>9} {'p99':>9} {'allowed':>8}")
    for n, (p50, p99, allowed) in results.items():
        print(f"{n:>7} {compile_s[n]:>8.2f}s {p50 / 1000:>7.2f}µs {p99 / 1000:>7.2f}µs {allowed:>7.0%}")
    print(f"t(10k)/t(10) = {results[10_000][0] / results[10][0]:.2f}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=15, help="rounds per size, interleaved (default 15)")
    ap.add_argument("--distinct", type=int, default=200, metavar="N",
                    help="distinct requests in the first table (default 200)")
    args = ap.parse_args()
    table(f"same request diversity at every size ({args.distinct} distinct requests):",
          args.requests, args.rounds, args.distinct)
    table("requests drawn from everything the rules grant (more distinct requests as rules grow; "
          "the growth is CPU cache misses on the larger working set):", args.requests, args.rounds, None)


if __name__ == "__main__":
    main()
