"""The product's promise as a benchmark: real applications over skylan against
the same applications over the bare underlay, with and without their own TLS.

    .venv/bin/python benchmarks/app.py [--runs 3] [--seconds 5] [--python]
        [--json] [--png docs/images/app.png]

Between two lab hosts, over every path, in interleaved runs (drift hits every
path alike), the median of:

* PostgreSQL ``pgbench``: select-only with 1 and 16 clients, TPC-B-like
  (``-N``) with 8 clients (transactions/s), and a bulk
  ``COPY pgbench_accounts TO STDOUT`` (MB/s);
* ``redis-benchmark``: GET and SET with 16 connections, one request at a time
  and pipelined 16 deep (requests/s).

Paths: the native underlay; the native underlay with the application's own
TLS (``sslmode=require``, ``redis --tls``); skylan encrypted (the compiled core
where it is built); skylan unencrypted (kernel VXLAN); with ``--python`` also
skylan encrypted on the Python data plane. Needs root.

As ``../shared/bench/peers.sh``'s ``EXTRA_MEASURE`` (``--peers-extra``), the same
workloads run between its namespaces over its overlay address, so every peer
gets them: ``EXTRA_MEASURE="$PWD/.venv/bin/python $PWD/benchmarks/app.py
--peers-extra"``; each case's figures go to ``$PB_CASE_DIR/app.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.throughput import skylan_overlay
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from skylan.lab import Host, Lab
from skylan.lab.procs import stop_process
from skylan.lab.waiting import wait_for

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
REDIS_PORT, REDIS_TLS_PORT, PG_PORT = 6379, 6380, 5432
SCALE = 10  # pgbench scale: 1,000,000 accounts, ~130 MB for COPY (--scale)
PGBENCH = ["pgbench", "-p", str(PG_PORT), "-U", "postgres", "-h"]  # the address follows
WORKLOADS = ("pg_S1", "pg_S16", "pg_N8", "copy_MBps", "get", "set", "get_p16", "set_p16")
HEADINGS = {
    "pg_S1": "pg S 1c",
    "pg_S16": "pg S 16c",
    "pg_N8": "pg -N 8c",
    "copy_MBps": "COPY MB/s",
    "get": "GET",
    "set": "SET",
    "get_p16": "GET P16",
    "set_p16": "SET P16",
}


@dataclass
class Servers:
    """PostgreSQL and Redis on one host, on every address, with TLS too."""

    host: Host
    root: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def start(cls, host: Host) -> Servers:
        if not PG_BIN:
            raise SystemExit("PostgreSQL is not installed (scripts/install-system-deps.sh)")
        root = Path(tempfile.mkdtemp(prefix="skylan-app-"))
        root.chmod(0o755)
        servers = cls(host, root)
        try:
            servers._start()
        except BaseException:
            servers.close()
            raise
        return servers

    def _start(self) -> None:
        host, root = self.host, self.root
        cert, key = self._certificate()
        data, sockets = root / "pg", root / "sock"
        data.mkdir()
        sockets.mkdir()
        for path in (data, sockets, cert.parent):
            shutil.chown(path, "postgres", "postgres")
        for path in (cert, key):
            shutil.chown(path, "postgres", "postgres")
        bindir = PG_BIN[-1].parent
        as_pg = ["runuser", "-u", "postgres", "--"]
        host.run(
            [*as_pg, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
            check=True,
            timeout=120,
        )
        (data / "pg_hba.conf").write_text("host all all 0.0.0.0/0 trust\nlocal all all trust\n")
        options = {
            "listen_addresses": "'*'",
            "port": str(PG_PORT),
            "unix_socket_directories": f"'{sockets}'",
            "ssl": "on",
            "ssl_cert_file": f"'{cert}'",
            "ssl_key_file": f"'{key}'",
            "fsync": "off",  # the network is measured, not the disk
            "synchronous_commit": "off",
            "max_connections": "100",
            "shared_buffers": "256MB",
        }
        with (data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in options.items())
        log = (root / "postgres.log").open("ab")
        self.procs.append(
            host.spawn([*as_pg, str(PG_BIN[-1]), "-D", str(data)], stdout=log, stderr=log)
        )
        redis = [
            "redis-server",
            *("--port", str(REDIS_PORT), "--bind", "0.0.0.0", "--protected-mode", "no"),
            *("--save", "", "--appendonly", "no", "--dir", str(root)),
            *("--tls-port", str(REDIS_TLS_PORT), "--tls-auth-clients", "no"),
            *("--tls-cert-file", str(cert), "--tls-key-file", str(key)),
            *("--tls-ca-cert-file", str(cert)),
        ]
        self.procs.append(host.spawn(redis, stdout=log, stderr=log))
        ready = [str(bindir / "pg_isready"), "-h", str(sockets), "-p", str(PG_PORT)]
        try:
            wait_for("PostgreSQL to start", lambda: host.run(ready).ok, timeout=60)
        except Exception:
            print((root / "postgres.log").read_text()[-2000:], file=sys.stderr)
            raise

    def _certificate(self) -> tuple[Path, Path]:
        """A throw-away self-signed certificate (the clients do not verify it,
        as most deployments' sslmode=require does not)."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app-bench")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        tls = self.root / "tls"
        tls.mkdir()
        cert_path, key_path = tls / "server.crt", tls / "server.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        return cert_path, key_path

    def close(self) -> None:
        for proc in self.procs:
            stop_process(proc, grace=10)
        shutil.rmtree(self.root, ignore_errors=True)


def pgbench(client: Host, ip: str, args: list[str], tls: bool, seconds: int) -> float:
    env = {"PGSSLMODE": "require" if tls else "disable"}
    res = client.run(
        [*PGBENCH, ip, "-n", "-T", str(seconds), *args, "postgres"],
        env=env,
        timeout=seconds + 120,
    )
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", res.stdout)
    if found is None:
        raise RuntimeError(f"pgbench {args} to {ip}: {res.stderr.strip()[-400:]}")
    return float(found.group(1))


def copy_mbps(client: Host, ip: str, tls: bool) -> float:
    """A bulk COPY of the accounts table to the client, MB/s."""
    sql = "COPY pgbench_accounts TO STDOUT"
    script = (
        "import subprocess, sys, time\n"
        f"cmd = ['psql', '-h', '{ip}', '-p', '{PG_PORT}', '-U', 'postgres', '-qAt', '-c', "
        f"'{sql}', 'postgres']\n"
        "t = time.monotonic(); p = subprocess.Popen(cmd, stdout=subprocess.PIPE); n = 0\n"
        "while chunk := p.stdout.read(1 << 20): n += len(chunk)\n"
        "p.wait(); print(n, time.monotonic() - t)\n"
    )
    env = {"PGSSLMODE": "require" if tls else "disable"}
    res = client.run([sys.executable, "-c", script], env=env, timeout=300)
    size, elapsed = res.stdout.split()
    if int(size) < 5 << 20:
        raise RuntimeError(f"COPY from {ip} returned {size} bytes: {res.stderr[-300:]}")
    return int(size) / 1e6 / float(elapsed)


def redis_rps(client: Host, ip: str, tls: bool, seconds: int) -> dict[str, float]:
    """GET and SET, 16 connections, one at a time and pipelined 16 deep."""
    port = REDIS_TLS_PORT if tls else REDIS_PORT
    out = {}
    for pipeline, suffix in ((1, ""), (16, "_p16")):
        requests = int(30000 * seconds * (4 if pipeline > 1 else 1))
        cmd = ["redis-benchmark", "-h", ip, "-p", str(port), "-c", "16", "-P", str(pipeline)]
        cmd += ["-t", "get,set", "-n", str(requests), "-d", "100", "--csv"]
        cmd += ["--tls", "--insecure"] if tls else []
        res = client.run(cmd, timeout=300)
        for test, rps in re.findall(r'^"(GET|SET)","([\d.]+)"', res.stdout, re.MULTILINE):
            out[test.lower() + suffix] = float(rps)
        if len(out) < (2 if pipeline == 1 else 4):
            raise RuntimeError(f"redis-benchmark to {ip}: {res.stdout[-300:]}{res.stderr[-300:]}")
    return out


def measure(client: Host, ip: str, tls: bool, seconds: int) -> dict[str, float]:
    return {
        "pg_S1": pgbench(client, ip, ["-S", "-c", "1", "-j", "1"], tls, seconds),
        "pg_S16": pgbench(client, ip, ["-S", "-c", "16", "-j", "2"], tls, seconds),
        "pg_N8": pgbench(client, ip, ["-N", "-c", "8", "-j", "2"], tls, seconds),
        "copy_MBps": copy_mbps(client, ip, tls),
        **redis_rps(client, ip, tls, seconds),
    }


def prepare(client: Host, ip: str, scale: int = SCALE) -> None:
    res = client.run(
        [*PGBENCH, ip, "-i", "-q", "-s", str(scale), "postgres"],
        env={"PGSSLMODE": "disable"},
        timeout=600,
    )
    if not res.ok:
        raise RuntimeError(f"pgbench -i: {res.stderr[-500:]}")


@dataclass
class Path_:
    name: str
    client: Host
    ip: str
    tls: bool = False


def skylan_paths(lab: Lab, hosts: list[Host], workdir: Path, python: bool) -> list[Path_]:
    """An encrypted and an unencrypted network between hosts 0 and 1; with
    ``python`` an encrypted one between hosts 2 and 3 on the Python data plane
    (the same overlays as throughput.py's)."""
    cases = skylan_overlay(lab, hosts, workdir, workers=1, python=python)
    names = {"skylan unencrypted": "skylan unencrypted (VXLAN)"}
    return [Path_(names.get(name, name), t.client, t.ip) for name, t in cases.items()]


def run_lab(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, list[dict[str, float]]] = {}
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        hosts = [lab.add_host(n) for n in ("a", "b", "c", "d")[: 4 if args.python else 2]]
        a, b = hosts[0], hosts[1]
        paths = [
            Path_("native underlay", a, b.underlay_ip),
            Path_("native + app TLS", a, b.underlay_ip, tls=True),
            *skylan_paths(lab, hosts, Path(tmp), args.python),
        ]
        servers = [Servers.start(b)] + ([Servers.start(hosts[3])] if args.python else [])
        try:
            prepare(a, b.underlay_ip, args.scale)
            if args.python:
                prepare(hosts[2], paths[-1].ip, args.scale)
            for run in range(args.runs):
                for path in paths:
                    print(f"run {run + 1}/{args.runs}: {path.name}", file=sys.stderr)
                    figures = measure(path.client, path.ip, path.tls, args.seconds)
                    results.setdefault(path.name, []).append(figures)
        finally:
            for s in servers:
                s.close()
    medians = {
        name: {w: statistics.median(r[w] for r in runs) for w in WORKLOADS}
        for name, runs in results.items()
    }
    spreads = {
        name: {w: [min(r[w] for r in runs), max(r[w] for r in runs)] for w in WORKLOADS}
        for name, runs in results.items()
    }
    return {"runs": args.runs, "seconds": args.seconds, "medians": medians, "spread": spreads}


def table(report: dict[str, Any]) -> str:
    medians = report["medians"]
    native, tls = medians["native underlay"], medians["native + app TLS"]
    lines = [
        f"medians of {report['runs']} runs of {report['seconds']} s; pgbench tx/s, "
        "COPY MB/s, redis requests/s (16 connections)",
        f"{'path':30}" + "".join(f"{HEADINGS[w]:>11}" for w in WORKLOADS),
    ]
    for name, row in medians.items():
        lines.append(f"{name:30}" + "".join(f"{row[w]:>11.0f}" for w in WORKLOADS))
    for name, row in medians.items():
        if not name.startswith("skylan"):
            continue
        for base_name, base in (("native", native), ("app TLS", tls)):
            label = f"  {name.split(' (')[0]} ({name.split('(')[1]} / {base_name}"
            lines.append(f"{label:30}" + "".join(f"{row[w] / base[w]:>11.2f}" for w in WORKLOADS))
    return "\n".join(lines)


def png(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    medians = report["medians"]
    native = medians["native underlay"]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(medians)
    for i, (name, row) in enumerate(medians.items()):
        xs = [j + i * width for j in range(len(WORKLOADS))]
        ax.bar(xs, [row[w] / native[w] for w in WORKLOADS], width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(WORKLOADS))])
    ax.set_xticklabels([HEADINGS[w] for w in WORKLOADS])
    ax.set_ylabel("x native underlay")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.legend(fontsize=8)
    ax.set_title(f"PostgreSQL and Redis over each path (medians of {report['runs']} runs)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def peers_extra(seconds: int) -> None:
    """peers.sh's EXTRA_MEASURE: the workloads from PB_NS_A to PB_OV_B."""
    pids: list[subprocess.Popen[bytes]] = []

    def host(ns: str) -> Host:
        return Host(ns, ns, "", "", pids.append)

    client, server = host(os.environ["PB_NS_A"]), host(os.environ["PB_NS_B"])
    ip = os.environ["PB_OV_B"]
    servers = Servers.start(server)
    try:
        prepare(client, ip)
        figures = measure(client, ip, False, seconds)
    finally:
        servers.close()
        for proc in pids:
            stop_process(proc, grace=5)
    line = {"case": os.environ.get("PB_CASE", "?"), **figures}
    Path(os.environ.get("PB_CASE_DIR", ".")).joinpath("app.json").write_text(json.dumps(line))
    print(json.dumps(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--python", action="store_true", help="add the Python data plane")
    parser.add_argument("--scale", type=int, default=SCALE, help="pgbench's scale factor")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--png", type=Path)
    parser.add_argument("--peers-extra", action="store_true", help="run as peers.sh EXTRA_MEASURE")
    args = parser.parse_args()
    if args.peers_extra:
        peers_extra(args.seconds)
        return
    started = time.monotonic()
    report = run_lab(args)
    report["elapsed_s"] = round(time.monotonic() - started)
    if args.png:
        png(report, args.png)
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
