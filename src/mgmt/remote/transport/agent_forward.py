"""The paramiko runner, with the initiator's ssh-agent forwarded on each command.

A secondary of a via: run (mgmt.remote.hierarchy) logs in to the hosts behind
it with the initiator's keys, through the agent forwarded on the session that
runs it: no private key is ever written to the secondary, and the keys can be
used only while that session lasts. paramiko's AgentRequestHandler asks for
forwarding on the channel (auth-agent-req@openssh.com) and serves the
secondary's requests from $SSH_AUTH_SOCK here; without an agent here nothing
is forwarded and the secondary's logins fail with the reason ssh gives.
"""

import os
import socket
import struct
from typing import Optional, Tuple

import paramiko
from paramiko.agent import AgentRequestHandler, get_agent_connection

from mgmt.log import get_logger
from mgmt.remote.transport.paramiko_ssh import ParamikoRunner

log = get_logger("remote")


# The agent protocol's request for the keys, and its answer (draft-miller-ssh-agent).
REQUEST_IDENTITIES = b"\x00\x00\x00\x01\x0b"
IDENTITIES_ANSWER = 12
AGENT_TIMEOUT = 5.0  # an agent that takes the connection and never answers


def _count_keys(sock: str) -> int:
    """How many keys the agent at ``sock`` holds (OSError, ValueError: none answers)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(AGENT_TIMEOUT)
        conn.connect(sock)
        conn.sendall(REQUEST_IDENTITIES)
        answer = b""
        while len(answer) < 9:  # length, type, number of keys
            chunk = conn.recv(9 - len(answer))
            if not chunk:
                raise ValueError("it closed the connection")
            answer += chunk
    if answer[4] != IDENTITIES_ANSWER:
        raise ValueError(f"an unexpected answer ({answer[4]})")
    return int(struct.unpack(">I", answer[5:9])[0])


def agent_problem() -> Tuple[bool, Optional[str]]:
    """Whether an ssh-agent answers here (to be forwarded), and why it cannot log
    a secondary in further, or None: unset, gone (a stale SSH_AUTH_SOCK), or
    holding no key (started, but no ssh-add). Said up front: the hosts below
    would only say "Permission denied"."""
    sock = os.environ.get("SSH_AUTH_SOCK")
    if not sock:
        return False, "no ssh-agent to forward (SSH_AUTH_SOCK is unset)"
    try:
        keys = _count_keys(sock)
    except (OSError, ValueError) as err:
        why = getattr(err, "strerror", None) or str(err) or type(err).__name__
        return False, f"no ssh-agent answers at SSH_AUTH_SOCK ({sock}) to forward: {why}"
    if not keys:
        return True, f"the ssh-agent to forward ({sock}) holds no key: add one with ssh-add"
    return True, None


class _Forwarding(AgentRequestHandler):
    """paramiko's handler, but a request it cannot serve is closed: paramiko's
    thread raises when no agent answers here (it died during the run) and leaves
    the channel open, and the secondary's ssh waited on it for ever. Closed, that
    login goes on without an agent and fails saying so ("Permission denied")."""

    def __init__(self, channel: paramiko.Channel, host: str):
        self.host = host
        self.warned = False
        super().__init__(channel)

    def _forward_agent_handler(self, remote: paramiko.Channel) -> None:
        conn = get_agent_connection()
        if conn is None:
            remote.close()
            if not self.warned:
                self.warned = True
                sock = os.environ.get("SSH_AUTH_SOCK")
                log.warning("%s: the ssh-agent to forward (%s) no longer answers", self.host, sock)
            return
        conn.close()
        super()._forward_agent_handler(remote)


class AgentForwardingRunner(ParamikoRunner):
    """A :class:`ParamikoRunner` whose commands see the initiator's ssh-agent."""

    _forward: Optional[bool] = None  # checked once per secondary, at its first command

    def _open_session(self) -> paramiko.Channel:
        channel = super()._open_session()
        if self._forward is None:
            self._forward, problem = agent_problem()
            if problem is not None:
                log.warning("%s: %s; the hosts below it cannot be logged in to", self.host, problem)
        # Not for an agent that does not answer: forwarded, the secondary's ssh
        # asked it for keys and waited for ever (paramiko never answers then).
        if self._forward:
            # Kept with the channel: the handler serves it for the channel's life.
            channel.agent_forwarding = _Forwarding(channel, self.host)
        return channel
