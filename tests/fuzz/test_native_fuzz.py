"""The compiled core's parsers under libFuzzer, with ASan and UBSan.

Each target in ``csrc/fuzz`` is built with clang's sanitizers (any memory
error or undefined behaviour aborts) and run for a bounded time from the seed
corpus in ``tests/data/fuzz``; a crash fails the test and leaves the input
that caused it in the test's temporary directory. ``SKYLAN_FUZZ_SECONDS``
lengthens the runs for a deeper search outside the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
SEEDS = ROOT / "tests" / "data" / "fuzz"
SECONDS = int(os.environ.get("SKYLAN_FUZZ_SECONDS", "8"))
CORE = [
    p for p in sorted(CSRC.glob("*.c")) if p.name != "module.c"
]  # everything but the CPython binding
TARGETS = {
    "rx": CORE,
    "tx": CORE,
    "replay": [CSRC / "replay.c"],
    "reassembly": [CSRC / "reassembly.c", CSRC / "drops.c"],
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("clang") is None, reason="clang (scripts/install-system-deps.sh)"
    ),
]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_target_runs_clean_under_sanitizers(name: str, tmp_path: Path) -> None:
    binary = tmp_path / f"fuzz_{name}"
    build = subprocess.run(
        [
            "clang",
            "-g",
            "-O1",
            "-fsanitize=fuzzer,address,undefined",
            "-fno-sanitize-recover=undefined",
            str(CSRC / "fuzz" / f"fuzz_{name}.c"),
            *map(str, TARGETS[name]),
            "-lcrypto",
            "-lpthread",
            "-o",
            str(binary),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS / name, corpus)
    run = subprocess.run(
        [
            str(binary),
            f"-max_total_time={SECONDS}",
            "-rss_limit_mb=2048",
            "-timeout=10",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        cwd=tmp_path,
    )
    tail = run.stderr[-3000:]
    assert run.returncode == 0, tail
    assert "Done" in tail and "runs in" in tail, tail
