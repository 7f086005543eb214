"""README describes every flag `mgmt run --help` lists: a flag added to the field
table (mgmt.settings.FIELDS) without a word in README fails here."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from mgmt.cmdline import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_mgmt_run_flag_is_in_the_readme():
    run = build_parser()._subparsers._group_actions[0].choices["run"]
    flags = {
        option
        for action in run._actions
        for option in action.option_strings
        if option.startswith("--")
        and action.help != argparse.SUPPRESS  # not hidden ones
        and option not in ("--help", "--version", "--verbose", "--quiet")  # -v, -q: in README
    }
    assert "--remote" in flags and "--tmp-prefix" in flags  # the parser as read here
    readme = README.read_text()
    missing = sorted(f for f in flags if not re.search(rf"`{re.escape(f)}[ `=]", readme))
    assert missing == [], f"not in README.md: {missing}"
