"""Headless Chromium for page tests: the Debian package, installed with apt-get when missing."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from tests.integration.prometheus import debian_binary

#: where screenshots go: ignored by git, kept after the run
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


def chromium_binary() -> str:
    """Path of ``chromium``, installed with apt-get when missing (fails, never skips)."""
    return debian_binary("chromium", "chromium")


def _run(binary: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[bytes]:
    with tempfile.TemporaryDirectory(prefix="stormwatch-chromium-") as profile:
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",  # tests run as root in containers
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)


def screenshot(binary: str, url: str, path: Path, width: int, height: int) -> Path:
    """A PNG of ``url`` at ``width`` x ``height`` CSS pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    proc = _run(binary, f"--screenshot={path}", f"--window-size={width},{height}", url)
    if not path.is_file():
        raise AssertionError(f"chromium wrote no screenshot: {proc.stderr.decode()[-600:]}")
    return path


def dom(binary: str, url: str) -> str:
    """The page's DOM after the browser loaded it (and ran any script it would run)."""
    proc = _run(binary, "--dump-dom", url)
    if proc.returncode != 0 or not proc.stdout:
        raise AssertionError(f"chromium --dump-dom failed: {proc.stderr.decode()[-600:]}")
    return proc.stdout.decode()
