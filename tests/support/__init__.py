"""Helpers the test tiers share. Conftests and test modules import from here; nothing here
imports a conftest or a test module.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
