"""Agentless remote execution: ``mgmt run --remote FILE...`` over SSH.

Layout: :mod:`.hostspec` (which host a graph names), :mod:`.trust` (known_hosts),
:mod:`.connect` (ssh_config-aware connections), :mod:`.push` (bundle cache and
graph copy), :mod:`.tunnel` (reverse tunnel to our etcd), :mod:`.session` (one
host's whole life), :mod:`.fanout` (many hosts, convergence, ^C, summary) and
:mod:`.initiator` (the run: etcd, bundle, sessions). paramiko and Fabric are
imported only here, never by the agent itself, so the bundle does not need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mgmt.errors import MgmtError

if TYPE_CHECKING:
    from mgmt.settings import Settings

__all__ = ["run_remotes"]


def run_remotes(settings: Settings, **options: Any) -> int:
    """Run every ``settings.remotes`` graph on its host; the exit code (1 if any failed).

    ``options`` (for fab deploy and tests): ``fabric_config``, ``bundle``, ``out``.
    """
    try:
        import fabric  # noqa: F401  (the initiator's SSH stack, absent from the bundle)
    except ImportError:
        raise MgmtError(
            "--remote needs Fabric and paramiko, which the single-file agent does not carry: "
            "run it from an installed mgmt-pkg (pip install mgmt-pkg)"
        ) from None
    from mgmt.remote.initiator import run

    return run(settings, **options)
