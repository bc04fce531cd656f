"""scripts/scan_secrets.sh: the repository is clean, and a planted secret is caught."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.reliability
SCRIPT = ROOT / "scripts" / "scan_secrets.sh"


def scan(target: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = ["bash", str(SCRIPT)] + ([str(target)] if target else [])
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(150)
def test_repository_has_no_secrets():
    result = scan()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 potential secret(s)" in result.stdout


@pytest.mark.timeout(150)
def test_a_planted_secret_fails_the_scan(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    # Assembled at run time so this test file itself never holds a secret-shaped string.
    aws_key = "AKIA" + "Q3EXAMPLE7" + "ZX4MPLE2"
    (tmp_path / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{aws_key}"\n')
    (tmp_path / "private.pem").write_text("-----BEGIN RSA " + "PRIVATE KEY-----\nMIIB\n")
    (tmp_path / "local.env").write_text("AMQP_URI=amqp://guest:guest@localhost:5672/\n")
    result = scan(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "settings.py:1: AWS Access Key" in result.stdout
    assert "private.pem:1: Private Key" in result.stdout
    assert "local.env" not in result.stdout  # the documented guest/guest default is allowed
