"""Each study's time in the main job on the shipped SmolLM2 pair (or --model), as `interp run`
prints it, with loading and the whole run's wall time. Never asserts; the target is the whole
main job within 5 minutes on 2 cores (the first run's GGUF conversion included).

    python perf/studies.py --threads 2
    python perf/studies.py --threads 2 -- --model path/to/model     # anything after -- goes to `interp run`
"""

from __future__ import annotations

import argparse
import tempfile
import time

from interp.cli import main as interp_main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("rest", nargs="*", help="more `interp run` options, after --")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        code = interp_main(["run", "--out", out, "--threads", str(args.threads), *args.rest])
        print(f"interp run: {time.perf_counter() - started:.1f}s wall in all, exit {code}")


if __name__ == "__main__":
    main()
