"""What the end of a host's session means: its result and why, from the agent's
exit status or from the exception that cut the session short."""

from typing import Optional, Tuple

from mgmt.errors import GraphError, RemoteError
from mgmt.log import get_logger
from mgmt.remote import protocol
from mgmt.remote.orchestration import agentstart
from mgmt.remote.orchestration.results import EXITED, FAILED, describe_error
from mgmt.remote.transport.runner import is_connection_error

log = get_logger("remote")


def judge_status(
    status: int,
    stop_reason: Optional[str],
    stop_grace: float,
    python: Optional[protocol.Python],
) -> Tuple[str, str]:
    """(result, message) of an agent that ended with ``status``."""
    if stop_reason is not None:
        # SIGINT is a clean stop whatever code the agent chose for it.
        if status in (0, 128 + 2):
            return stop_reason, ""
        if status == 128 + 9:
            return FAILED, f"agent killed after ignoring SIGINT for {stop_grace:.0f} s"
    if status == 0:
        return EXITED, ""
    if status == 1:
        return FAILED, "the agent ended with failed resources (status 1; see its output)"
    why = agentstart.why_it_ended(status, python)
    return FAILED, why or f"agent exited with status {status}"


def judge_error(
    host: str,
    err: Exception,
    lost: Optional[str],
    dropped: Optional[str],
    stop_reason: Optional[str],
) -> Tuple[str, str]:
    """(result, message) of a session ended by ``err``: ``lost`` is its connection's
    lost reason, ``dropped`` why the stop gave up on it, ``stop_reason`` the stop asked."""
    if lost is not None:
        return FAILED, lost
    if dropped is not None:  # it did not answer within the stop's grace: not stopped
        return FAILED, dropped
    if stop_reason is not None:
        # Cut short by the stop asked: a host stopped because it converged
        # did converge, whatever its connection did while it was ended.
        return stop_reason, ""
    if isinstance(err, RemoteError):
        return FAILED, err.message
    if isinstance(err, GraphError):
        return FAILED, str(err)
    if is_connection_error(err):
        return FAILED, f"connection lost: {describe_error(err)}"
    # a bug: fail this host, keep the others going
    log.debug("%s: session failed", host, exc_info=err)
    return FAILED, f"internal error: {type(err).__name__}: {err}"
