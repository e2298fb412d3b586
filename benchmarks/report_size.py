"""HTML report benchmark: size of the report and the time it adds to an analysis.

Uses the synthetic trace of benchmarks/analyzer_throughput.py (10 million events
by default, generated once and cached under benchmarks/out/), runs the analysis
once with the HTML report rendered from the open database, and prints the
report's size (plotly.js inline and from the CDN) and the extra render time.

    python benchmarks/report_size.py [--events 10000000] [--regenerate]

Targets on the 2-core reference machine: report <= 15 MB, render <= 60 s.
Exit status 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

TARGET_BYTES = 15 * 1000 * 1000
TARGET_SECONDS = 60.0


def main() -> int:
    import analyzer_throughput as bench

    from analyzer.analysis import analyze
    from analyzer.report import html

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--regenerate", action="store_true")
    args = ap.parse_args()
    bench.OUT.mkdir(parents=True, exist_ok=True)
    trace = bench.OUT / f"synthetic-{args.events}-v{bench.GEN_VERSION}.jsonl"
    if args.regenerate or not trace.exists():
        t = time.perf_counter()
        bench.generate(trace, args.events)
        print(f"generated {trace} ({trace.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")

    timings: dict[str, float] = {}
    pages: dict[str, str] = {}

    def render(doc: dict, con) -> None:
        for mode in ("inline", "cdn"):
            t = time.perf_counter()
            pages[mode] = html.render(doc, con=con, plotlyjs=mode)
            timings[mode] = time.perf_counter() - t

    t = time.perf_counter()
    doc = analyze([trace], memory_limit=os.environ.get("LOCKSCOPE_BENCH_MEMORY", "2GB"), on_result=render)
    total = time.perf_counter() - t
    out = bench.OUT / "report.html"
    out.write_text(pages["inline"], encoding="utf-8")
    (bench.OUT / "report-cdn.html").write_text(pages["cdn"], encoding="utf-8")
    size = len(pages["inline"].encode())
    analysis = total - timings["inline"] - timings["cdn"]
    print(f"events: {doc['trace']['events']:,}  findings: {len(doc['findings'])}  locks: {len(doc['locks'])}")
    print(f"analysis without the report: {analysis:.1f} s")
    print(f"HTML report (plotly.js inline): {size / 1e6:.2f} MB, rendered in {timings['inline']:.1f} s -> {out}")
    print(f"HTML report (plotly.js from CDN): {len(pages['cdn'].encode()) / 1e6:.2f} MB, "
          f"rendered in {timings['cdn']:.1f} s")
    ok = size <= TARGET_BYTES and timings["inline"] <= TARGET_SECONDS
    print("targets met" if ok else f"target missed (<= {TARGET_BYTES / 1e6:.0f} MB, <= {TARGET_SECONDS:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
