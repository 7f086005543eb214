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

import paramiko
from paramiko.agent import AgentRequestHandler

from mgmt.log import get_logger
from mgmt.remote.transport.paramiko_ssh import ParamikoRunner

log = get_logger("remote")


class AgentForwardingRunner(ParamikoRunner):
    """A :class:`ParamikoRunner` whose commands see the initiator's ssh-agent."""

    def _open_session(self) -> paramiko.Channel:
        channel = super()._open_session()
        if os.environ.get("SSH_AUTH_SOCK"):
            # Kept with the channel: the handler serves it for the channel's life.
            channel.agent_forwarding = AgentRequestHandler(channel)
        else:
            log.warning("%s: no ssh-agent to forward (SSH_AUTH_SOCK is unset)", self.host)
        return channel
