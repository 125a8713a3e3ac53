"""How long the built-in simulator takes to render a test-mode video.

    python bench/simulator_render.py [--repeat 3] [--cases 5s-720p,10s-1080p,10s-720x1280]

Every test-mode job ends with ``render_simulation`` (PyAV + libx264, ultrafast, 24 fps)
in a worker thread, so its render time is how long a test-mode job holds a worker
slot and a CPU core. Each case is rendered ``--repeat`` times in this process; the
table gives the median wall time, the CPU time, the frame rate, the speed against
real time and the file size, and checks the result with ``probe`` (size, duration).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from _common import machine, print_machine, print_table, proc_sample, temp_folder, write_json

# name -> (seconds, resolution word, aspect ratio): what a client would ask for
CASES = {
    "5s-720p": (5, "720p", "16:9"),
    "10s-720p": (10, "720p", "16:9"),
    "10s-1080p": (10, "1080p", "16:9"),
    "10s-720x1280": (10, "720p", "9:16"),
    "5s-480p": (5, "480p", "16:9"),
}
DEFAULT_CASES = "5s-720p,10s-1080p,10s-720x1280"
PROMPT = (
    "A paper boat drifts down a rain-soaked street at dusk, neon reflections rippling "
    "in the puddles, cinematic, shallow depth of field"
)


def render_case(name: str, folder: Path, repeat: int) -> dict[str, object]:
    from vidgate.domain.frames import frame_size
    from vidgate.media.probe import probe
    from vidgate.media.render import render_simulation

    seconds, resolution, aspect = CASES[name]
    width, height = frame_size(resolution, aspect)
    walls, cpus = [], []
    path = folder / f"{name}.mp4"
    for _ in range(repeat):
        path.unlink(missing_ok=True)
        before = proc_sample()
        start = time.perf_counter()
        render_simulation(
            path,
            prompt=PROMPT,
            duration_s=seconds,
            width=width,
            height=height,
            label="SIMULATION · benchmark · vidgate test mode",
        )
        walls.append(time.perf_counter() - start)
        after = proc_sample()
        if before and after:
            cpus.append(after.cpu_s - before.cpu_s)
    info = probe(path)
    wall = statistics.median(walls)
    frames = seconds * 24
    return {
        "case": name,
        "size": f"{width}x{height}",
        "seconds": seconds,
        "wall_s": wall,
        "wall_min_s": min(walls),
        "cpu_s": statistics.median(cpus) if cpus else float("nan"),
        "fps": frames / wall,
        "x_realtime": seconds / wall,
        "mib": path.stat().st_size / 2**20,
        "probed": f"{info.width}x{info.height} {info.duration_s:.2f}s {info.codec}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="renders per case; the median is shown")
    parser.add_argument("--cases", default=DEFAULT_CASES, help=f"comma-separated, from: {', '.join(CASES)}")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    info = machine()
    print_machine(info)
    results = []
    with temp_folder("vg-bench-render-") as folder:
        for name in names:
            print(f"   rendering {name} x{args.repeat} ...", flush=True)
            results.append(render_case(name, folder, max(1, args.repeat)))
    print_table(
        f"Simulator render_simulation (libx264 ultrafast, crf 26, 24 fps; {os.cpu_count()} cores)",
        ["case", "frame", "wall s (median)", "min", "CPU s", "frames/s", "x real time", "MiB", "probed"],
        [
            [
                r["case"],
                r["size"],
                f"{r['wall_s']:.2f}",
                f"{r['wall_min_s']:.2f}",
                f"{r['cpu_s']:.2f}",
                r["fps"],
                r["x_realtime"],
                r["mib"],
                r["probed"],
            ]
            for r in results
        ],
    )
    write_json(args.json, {"machine": info, "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
