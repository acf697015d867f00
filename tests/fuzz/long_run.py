"""The long fuzz run (``make fuzz``): the hypothesis fuzz tests with many examples each,
then the coverage-guided atheris harness for the rest, until ``--inputs`` inputs were tried;
prints one JSON object: inputs per target, crashes (0, or the run fails), seconds.

    python -m tests.fuzz.long_run --inputs 1000000 [--examples 2000]

atheris is an optional dependency: installed here with pip when missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _hypothesis(examples: int, counts: Path) -> int:
    env = os.environ | {
        "REFUNDRY_FUZZ_EXAMPLES": str(examples),
        "REFUNDRY_FUZZ_COUNT_FILE": str(counts),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/fuzz"],
        cwd=ROOT,
        env=env,
        check=False,
    )
    return done.returncode


def _atheris(runs: int, corpus: Path) -> tuple[int, int, str]:
    """(inputs, exit code, the end of atheris's output)."""
    try:
        import atheris  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "atheris"], check=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.atheris_harness",
            f"-atheris_runs={runs}",
            "-max_len=4096",
            "-timeout=10",
            str(corpus),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Done (\d+) in", done.stderr)
    crashed = "Uncaught Python exception" in done.stderr or "ERROR: libFuzzer" in done.stderr
    # libFuzzer's per-input timer (-timeout) may ring once the run is done and the
    # interpreter is exiting: a run that printed "Done" and no crash finished cleanly.
    code = 1 if crashed or found is None else 0
    return int(found.group(1)) if found else 0, code, done.stderr[-3000:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--examples", type=int, default=2000, help="per hypothesis test")
    args = parser.parse_args()
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        counts = Path(folder) / "counts.json"
        code = _hypothesis(args.examples, counts)
        per_target: dict[str, int] = json.loads(counts.read_text()) if counts.exists() else {}
        corpus = Path(folder) / "corpus"
        corpus.mkdir()
        left = max(0, args.inputs - sum(per_target.values()))
        ran, atheris_code, tail = _atheris(left, corpus) if left else (0, 0, "")
    per_target["atheris (all parsers)"] = ran
    summary = {
        "inputs": sum(per_target.values()),
        "per_target": per_target,
        "hypothesis_exit": code,
        "atheris_exit": atheris_code,
        "crashes": int(code != 0) + int(atheris_code != 0),
        "seconds": round(time.monotonic() - began, 1),
    }
    if atheris_code:
        print(tail, file=sys.stderr)
    print(json.dumps(summary))
    return 0 if summary["crashes"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
