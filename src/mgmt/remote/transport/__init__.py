"""Transport: how the initiator reaches a host and runs things there.

A :class:`~.runner.Runner` (in the manner of invoke's Runner) runs a command,
streams its output, feeds its stdin, opens a reverse tunnel and uploads a file,
and says when its host stopped answering. :mod:`.paramiko_ssh` is the one the
initiator uses (Fabric/paramiko: ssh_config, ProxyJump, ssh-agent, known_hosts
through :mod:`.trust`); a second one on the system's ``ssh`` client (with
ControlMaster) fits the same interface, for hosts that have only python3 and
openssh-clients. :class:`~.runner.Become` is where running as another user
plugs in: every runner starts its commands through ``become.start``, and
:class:`~.sudo.Sudo` answers sudo's prompt (a token of ours, not sudo's text)
with the password on stdin, using a pty only where sudoers demands one.

paramiko and Fabric are imported only by the initiator, never by the agent.
"""
