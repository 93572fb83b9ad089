"""`make fuzz`: run every atheris target for a bounded time, seeded from the checked-in bad-input corpus, and
report executions and findings (crash inputs are kept under `fuzz/findings/`). Exit 1 on any finding.

    python -m fuzz.run [--seconds 60] [--only jsonrpc,sse]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("jsonrpc", "sse", "identity", "policy")
FINDINGS = ROOT / "fuzz" / "findings"


def seeds(target: str, into: Path) -> int:
    """Seed inputs: corpus bodies for the JSON-RPC target, upstream SSE streams for the framer."""
    sys.path.insert(0, str(ROOT))
    from tests.hardening.corpus_loader import load_cases

    n = 0
    for case in load_cases():
        data: bytes | None = None
        if target == "jsonrpc" and case.body:
            data = case.body[:65536]
        elif target == "sse" and "upstream_sse" in case.spec:
            data = b"\x05" + "".join(case.spec["upstream_sse"]).encode()
        if data is not None:
            (into / f"{case.id}").write_bytes(data)
            n += 1
    return n


def run_target(target: str, seconds: int, python: str) -> dict[str, object]:
    FINDINGS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"mcpgate-fuzz-{target}-") as tmp:
        corpus = Path(tmp)
        n_seeds = seeds(target, corpus)
        cmd = [python, "-m", f"fuzz.fuzz_{target}", f"-max_total_time={seconds}", "-print_final_stats=1",
               f"-artifact_prefix={FINDINGS}/{target}-", "-timeout=10", "-rss_limit_mb=2048", str(corpus)]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120, check=False,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        elapsed = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    artifacts = re.findall(r"Test unit written to (\S+)", out)
    return {"target": target, "rc": proc.returncode, "executions": int(m.group(1)) if m else 0,
            "seconds": round(elapsed, 1), "seeds": n_seeds, "findings": artifacts,
            "tail": "" if proc.returncode == 0 else out[-3000:]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "60")))
    ap.add_argument("--only", default="", help="comma-separated targets (default: all)")
    args = ap.parse_args(argv)
    targets = [t for t in TARGETS if not args.only or t in args.only.split(",")]
    bad = 0
    print(f"{'target':<10} {'executions':>12} {'exec/s':>8} {'seeds':>6}  result")
    for t in targets:
        r = run_target(t, args.seconds, sys.executable)
        secs = float(r["seconds"]) or 1.0  # type: ignore[arg-type]
        ok = r["rc"] == 0
        bad += not ok
        result = "ok" if ok else f"FINDING rc={r['rc']} {' '.join(r['findings'])}"  # type: ignore[arg-type]
        print(f"{t:<10} {r['executions']:>12} {int(r['executions']) / secs:>8.0f} {r['seeds']:>6}  {result}")  # type: ignore[call-overload]
        if not ok:
            print(r["tail"], file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
