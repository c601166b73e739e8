"""kcat for integration tests: the Debian package ``kcat`` (1.7.1 on bookworm), installed with
apt-get when missing, run on the librdkafka of the pinned confluent-kafka wheel.

Why not Debian's librdkafka: bookworm's librdkafka 2.0.2 skips KIP-482 tagged fields one
byte short (fixed upstream in 2023, confluentinc/librdkafka#4278), and Tansu's
ApiVersions v3 answer carries four of them (SupportedFeatures ... ZkMigrationReady), so
every connection fails with "ApiVersionRequest failed: Local: Read underflow". librdkafka
keeps its ABI across 1.x and 2.x: the same kcat binary runs on the wheel's library, found
first through ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

import confluent_kafka
import pytest

from tests.integration.prometheus import debian_binary


def kcat_binary() -> str:
    return debian_binary("kcat", "kcat")


@cache
def _library_dir() -> str | None:
    """A directory holding ``librdkafka.so.1``: the wheel's library (auditwheel renamed it,
    so a link under the soname is made next to the wheel's copy, in a temporary directory)."""
    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka-*.so*"))
    if not found:  # confluent-kafka built against a system librdkafka: use that
        return None
    link_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"stormwatch-kcat-{found[0].stem}"
    link_dir.mkdir(exist_ok=True)
    link = link_dir / "librdkafka.so.1"
    if not link.exists():
        tmp = link_dir / f".librdkafka.so.1.{os.getpid()}"
        tmp.symlink_to(found[0])
        tmp.replace(link)  # atomic: parallel test runs may do the same
    return str(link_dir)


def kcat(*args: str, stdin: bytes | None = None, timeout: float = 60) -> str:
    """Run ``kcat -q ARGS`` (stdin from ``stdin``); its standard output, or the test fails
    with kcat's error."""
    env = dict(os.environ)
    lib = _library_dir()
    if lib:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [lib, env.get("LD_LIBRARY_PATH")]))
    cmd = [kcat_binary(), "-q", *args]
    try:
        proc = subprocess.run(
            cmd, input=stdin, env=env, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"kcat {' '.join(args)} did not finish within {timeout:.0f} s", pytrace=False)
    if proc.returncode != 0:
        err = proc.stderr.decode()[-1000:].strip()
        pytest.fail(f"kcat {' '.join(args)} failed ({proc.returncode}): {err}", pytrace=False)
    return proc.stdout.decode()


def kcat_version() -> str:
    """``kcat -V``'s version line (kcat's version and the librdkafka it runs on)."""
    return next(line for line in kcat("-V").splitlines() if line.startswith("Version"))
