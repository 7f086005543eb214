"""``mgmt`` command line (placeholder until the agent lands)."""

from __future__ import annotations

import sys


def main() -> None:
    sys.exit("mgmt: not built yet")
