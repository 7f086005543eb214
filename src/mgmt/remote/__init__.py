"""Agentless remote execution: ``mgmt run --remote FILE...`` over SSH.

Three layers, each a package:

- :mod:`.transport`: reaching a host (a Runner: commands, streams, stdin, a
  reverse tunnel, uploads, a dead-host watch; paramiko today, the system's
  OpenSSH client next) and the ``become`` seam for sudo;
- :mod:`.protocol`: what initiator and agent say to each other, and the
  programs shipped to hosts (start.sh, launcher.py with unpacked.py);
- :mod:`.orchestration`: the run: the etcd endpoint, one session per host, the
  fan-out that owns the run's state, the graph watcher, the summary.

:mod:`.hostspec` is the input all three share: which host each graph names.
paramiko and Fabric are imported only by the initiator, never by the agent, so
the bundle does not need them.
"""

from typing import TYPE_CHECKING, Any

from mgmt.errors import MgmtError

if TYPE_CHECKING:
    from mgmt.settings import Settings

__all__ = ["run_remotes"]


def run_remotes(settings: "Settings", **options: Any) -> int:
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
    from mgmt.remote.orchestration.initiator import run

    return run(settings, **options)
