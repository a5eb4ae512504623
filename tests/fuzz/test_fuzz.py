"""A coverage-guided fuzz run of the tunnel's receive path (15 s in the suite;
SKYLAN_FUZZ_SECONDS for longer runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("fuzz_tunnel.py")
SECONDS = int(os.environ.get("SKYLAN_FUZZ_SECONDS", "15"))


@pytest.mark.slow
def test_tunnel_receive_path_survives_fuzzing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # real datagrams are spliced in by the harness itself (see fuzz_tunnel.py)
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            f"-max_total_time={SECONDS}",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        cwd=tmp_path,
        check=False,
    )
    log = proc.stderr[-4000:]
    assert proc.returncode == 0, log
    assert "Done" in proc.stderr, log
    runs = [line for line in proc.stderr.splitlines() if "stat::number_of_executed_units" in line]
    assert runs and int(runs[0].split(":")[-1]) > 10_000, log
