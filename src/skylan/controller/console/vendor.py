"""The console's third-party browser assets: pinned npm packages fetched at
install time, checked against the registry's SHA-512 integrity, and served
from the controller itself, so the console works on a network with no
internet (no CDN at run time).

``python -m skylan.controller.console.vendor`` fetches whatever is missing;
``make`` runs it after installing the package.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import httpx

VENDOR_DIR = Path(__file__).parent / "static" / "vendor"
REGISTRY = os.environ.get("SKYLAN_NPM_REGISTRY", "https://registry.npmjs.org")


@dataclass(frozen=True)
class Asset:
    package: str
    version: str
    integrity: str  # the registry's "dist.integrity" of the tarball
    files: dict[str, str]  # path inside the tarball -> name served under /static/vendor/

    @property
    def tarball_url(self) -> str:
        base = self.package.rsplit("/", 1)[-1]
        return f"{REGISTRY}/{self.package}/-/{base}-{self.version}.tgz"


ASSETS = (
    Asset(
        "htmx.org",
        "2.0.11",
        "sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA==",
        {"package/dist/htmx.min.js": "htmx.min.js"},
    ),
    Asset(
        "uplot",
        "1.6.32",
        "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==",
        {
            "package/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
            "package/dist/uPlot.min.css": "uPlot.min.css",
        },
    ),
)


class AssetError(Exception):
    pass


def missing(directory: Path = VENDOR_DIR) -> list[Asset]:
    return [a for a in ASSETS if not all((directory / n).is_file() for n in a.files.values())]


def check_integrity(data: bytes, integrity: str) -> None:
    algo, _, expected = integrity.partition("-")
    if algo != "sha512":
        raise AssetError(f"unsupported integrity algorithm {algo!r}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise AssetError("integrity mismatch: the tarball is not the pinned release")


def unpack(asset: Asset, tarball: bytes, directory: Path) -> None:
    check_integrity(tarball, asset.integrity)
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for inner, name in asset.files.items():
            try:
                member = tar.extractfile(inner)
            except KeyError:
                member = None
            if member is None:
                raise AssetError(f"{asset.package}@{asset.version} has no {inner}")
            tmp = directory / f".{name}.tmp"
            tmp.write_bytes(member.read())
            tmp.replace(directory / name)


def fetch(directory: Path = VENDOR_DIR) -> list[str]:
    """Download and unpack the assets not yet present; returns what was fetched."""
    fetched = []
    with httpx.Client(timeout=60, follow_redirects=True) as http:
        for asset in missing(directory):
            resp = http.get(asset.tarball_url)
            if resp.status_code != 200:
                raise AssetError(f"{asset.tarball_url}: HTTP {resp.status_code}")
            unpack(asset, resp.content, directory)
            fetched.append(f"{asset.package}@{asset.version}")
    return fetched


def main() -> int:
    try:
        fetched = fetch()
    except (AssetError, httpx.HTTPError) as exc:
        print(f"error: fetching the console's browser assets failed: {exc}", file=sys.stderr)
        return 1
    if fetched:
        print("console assets fetched: " + ", ".join(fetched))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
