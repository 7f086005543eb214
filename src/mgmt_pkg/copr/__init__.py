"""COPR submissions through the copr client library (copr.v3).

``submit_srpm`` is what other commands call (``mgmt-pkg fake-rpm --copr``);
``submit_builds`` and ``create_project`` back ``mgmt-pkg copr build|project``.
The copr library is imported only when a submission runs.
"""

from mgmt_pkg.copr.config import load_config
from mgmt_pkg.copr.session import CoprFailed, Target, check_chroots, parse_target
from mgmt_pkg.copr.submit import (
    BuildFailed,
    BuildResult,
    check_target,
    create_project,
    submit_builds,
    submit_srpm,
    watch_builds,
)

__all__ = [
    "BuildFailed",
    "BuildResult",
    "CoprFailed",
    "Target",
    "check_chroots",
    "check_target",
    "create_project",
    "load_config",
    "parse_target",
    "submit_builds",
    "submit_srpm",
    "watch_builds",
]
