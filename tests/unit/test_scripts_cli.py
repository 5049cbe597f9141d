"""Every command line in scripts/ answers --help with its usage docstring."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).parents[2] / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help(script):
    out = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "usage" in out.stdout.lower()


def test_shell_scripts_have_help():
    for script in sorted(SCRIPTS[0].parent.glob("*.sh")):
        out = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "Usage" in out.stdout, script
