"""Opening an SSH connection the way ``ssh`` would, but with host keys checked.

Fabric's Connection gives us OpenSSH's configuration for free: ~/.ssh/config
aliases, User, Port, IdentityFile and ProxyJump (each hop a Connection of its
own), plus ssh-agent and the default keys through paramiko. We add what it
leaves out: known_hosts checking on every hop (see :mod:`.trust`),
a password prompt when asked for, and one-line errors naming the host.
"""

from __future__ import annotations

import getpass
import io
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import paramiko
from fabric import Config, Connection

from mgmt.errors import RemoteError
from mgmt.log import adopt_library_logger, get_logger
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.transport import ssh_include
from mgmt.remote.transport.runner import is_connection_error
from mgmt.remote.transport.trust import HostKeyChanged, apply_trust, host_key_entry

log = get_logger("remote")
# paramiko logs a failed handshake (a port that does not speak SSH) with its
# traceback on stderr; our own one-line error says it already: -v shows it.
adopt_library_logger("paramiko")

PASSWORD_TRIES = 3
# One prompt at a time: parallel sessions must not interleave their questions.
_prompt_lock = threading.Lock()
# Sessions start in parallel: Fabric's Config is built once and read under a lock
# (two threads building and merging it at once left one with a Config holding
# only 'run', seen at N = 30).
_config_lock = threading.RLock()


@dataclass
class ConnectOptions:
    """How to connect and whom to trust; shared by every host of a run."""

    identity: Optional[str] = None
    accept_new: bool = False
    allow_interactive: bool = False
    # The connection, the host's SSH greeting, the handshake and each answer to
    # the login must each come within this (ParamikoRunner: at most the run's
    # --lost-timeout). paramiko's own waits (greeting 15 s, login 30 s) and its
    # handshake wait ending quietly left a silent host to fail after 10 s with
    # "No existing session".
    timeout: float = 10.0
    # fab deploy hands in its own Config (fabric.yaml, -i, --prompt-for-login-password).
    fabric_config: Optional[Config] = None
    prompt: Callable[[str], str] = field(default=getpass.getpass, repr=False)

    def config(self) -> Config:
        with _config_lock:
            if self.fabric_config is None:
                self.fabric_config = _ssh_files_config()
            return self.fabric_config


def _ssh_files_config() -> Config:
    """Config() reads ~/.ssh/config and /etc/ssh/ssh_config, as ssh does, but not
    the files they Include (paramiko knows no Include): with Include lines, the
    files are read here with what they include (see :mod:`.ssh_include`)."""
    user, system = os.path.expanduser("~/.ssh/config"), "/etc/ssh/ssh_config"
    if not (ssh_include.has_include(user) or ssh_include.has_include(system)):
        return Config()
    ssh_config = paramiko.SSHConfig()
    try:
        for path, folder in ((user, os.path.dirname(user)), (system, "/etc/ssh")):
            ssh_config.parse(io.StringIO(ssh_include.expanded(path, folder)))
    except paramiko.ssh_exception.ConfigParseError:  # in an included file: as before
        return Config()
    return Config(ssh_config=ssh_config)


@dataclass
class CommandResult:
    status: int
    stdout: str
    stderr: str


def _connection(spec: HostSpec, options: ConnectOptions, password: Optional[str]) -> Connection:
    with _config_lock:
        return _new_connection(spec, options, password)


def _new_connection(spec: HostSpec, options: ConnectOptions, password: Optional[str]) -> Connection:
    config = options.config()
    kwargs: Dict[str, object] = dict(config.connect_kwargs)
    kwargs.setdefault("banner_timeout", options.timeout)  # a fabric.yaml's own value stays
    kwargs.setdefault("auth_timeout", options.timeout)
    kwargs.setdefault("transport_factory", aead_first_transport)
    if options.identity is not None:
        kwargs["key_filename"] = [str(options.identity)]
    if password is not None:
        kwargs["password"] = password
    conn = Connection(
        spec.target,
        user=spec.user,
        port=spec.port,
        config=config,
        connect_timeout=options.timeout,
        connect_kwargs=kwargs,
    )
    hop: object = conn
    while isinstance(hop, Connection):
        apply_trust(hop.client, spec.name, hop.ssh_config, options.accept_new)
        hop = hop.gateway
    return conn


def aead_first_transport(sock, **kwargs) -> paramiko.Transport:
    """A paramiko Transport that offers AES-GCM before its other ciphers.

    paramiko prefers AES-CTR with an HMAC, whose tag it computes and compares in
    Python for every packet; GCM's is checked in one call to the cryptography
    library. A run's traffic after the bundle is small packets (an agent's
    converged events, graph edits): a line sent to a host and read back took
    10-16 us (an eighth to a sixth) less of the initiator's CPU with GCM here.
    Servers without GCM (OpenSSH before 6.2) get the others, as before.
    """
    transport = paramiko.Transport(sock, **kwargs)
    options = transport.get_security_options()
    options.ciphers = sorted(options.ciphers, key=lambda name: "-gcm@" not in name)
    return transport


def _open(conn: Connection, spec: HostSpec, timeout: float) -> None:
    where = f"{conn.host}:{conn.port}"
    try:
        conn.open()
    except paramiko.BadHostKeyException as err:
        raise HostKeyChanged(
            spec.name, err.key, err.expected_key, host_key_entry(conn.host, conn.port)
        ) from None
    except paramiko.AuthenticationException:
        raise RemoteError(spec.name, f"login failed as {conn.user} on {where}") from None
    except (socket.timeout, TimeoutError):
        raise RemoteError(spec.name, f"cannot connect to {where}: timed out") from None
    except paramiko.ssh_exception.NoValidConnectionsError as err:
        reason = next(iter(err.errors.values())).strerror if err.errors else str(err)
        raise RemoteError(spec.name, f"cannot connect to {where}: {reason}") from None
    except OSError as err:
        raise RemoteError(spec.name, f"cannot connect to {where}: {err.strerror or err}") from None
    except paramiko.SSHException as err:
        silent = _silent(conn, err, timeout)
        if silent is not None:
            raise RemoteError(spec.name, f"{where} {silent}") from None
        cut = _cut_before_ssh(err)
        if cut is not None:
            raise RemoteError(spec.name, f"cannot connect to {where}: {cut}") from None
        if "No authentication methods available" in str(err):
            raise RemoteError(
                spec.name,
                f"login failed as {conn.user} on {where}: no key, ssh-agent or password to offer",
            ) from None
        raise RemoteError(spec.name, f"ssh to {where} failed: {err}") from None


def _silent(conn: Connection, err: paramiko.SSHException, timeout: float) -> Optional[str]:
    """What the host did not do in time, or None if that is not why ``err`` came.

    paramiko's wait for the greeting ends with "Error reading SSH protocol
    banner" (the cause a timeout); its wait for the handshake ends quietly, and
    the login that follows says "No existing session"."""
    cause = err.__context__
    banner = str(err).startswith("Error reading SSH protocol banner")
    timed_out = banner and isinstance(cause, (socket.timeout, TimeoutError))
    if not timed_out and "No existing session" not in str(err):
        return None
    transport = conn.client.get_transport()
    if transport is None or not transport.remote_version:
        return f"accepted the connection but sent no SSH greeting within {timeout:g} s"
    return f"sent its SSH greeting but did not finish the handshake within {timeout:g} s"


def _cut_before_ssh(err: paramiko.SSHException) -> Optional[str]:
    """Why the connection ended before SSH's greeting, or None if it did not.

    A port that takes the connection and ends it (nothing there speaks SSH, or
    a firewall or proxy accepts for an address it cannot reach) is a host we
    could not connect to; paramiko says "Error reading SSH protocol banner",
    with the connection's own failure as the exception it was handling.
    """
    cause = err.__context__
    if not str(err).startswith("Error reading SSH protocol banner") or cause is None:
        return None
    if not is_connection_error(cause):
        return None
    if isinstance(cause, (socket.timeout, TimeoutError)):
        what = "no greeting"
    elif isinstance(cause, OSError):
        what = cause.strerror or str(cause) or type(cause).__name__
    else:  # EOFError: closed without a word
        what = "closed"
    return f"{what} before SSH began ({_NOT_SSH})"


_NOT_SSH = "no SSH server there, or a firewall or proxy cut the connection"


def connect(spec: HostSpec, options: ConnectOptions) -> Connection:
    """An open, trusted connection to the host, or a RemoteError saying why not."""
    password = spec.password
    conn = _connection(spec, options, password)
    tries = 0
    while True:
        try:
            _open(conn, spec, options.timeout)
            break
        except RemoteError as err:
            conn.close()
            login_failed = str(err.message).startswith("login failed")
            if not (login_failed and options.allow_interactive and tries < PASSWORD_TRIES):
                raise
            tries += 1
            with _prompt_lock:
                password = options.prompt(f"Password for {conn.user}@{spec.name}: ")
            conn = _connection(spec, options, password)
    log.debug("%s: connected to %s@%s:%s", spec.name, conn.user, conn.host, conn.port)
    return conn


def run_command(
    conn: Connection, command: str, stdin: Optional[bytes] = None, timeout: float = 60.0
) -> CommandResult:
    """Run one short command over a fresh channel and collect its output."""
    channel = conn.transport.open_session(timeout=timeout)
    try:
        channel.settimeout(timeout)
        channel.exec_command(command)
        if stdin:
            channel.sendall(stdin)
        channel.shutdown_write()
        stdout = channel.makefile("rb").read()
        stderr = channel.makefile_stderr("rb").read()
        status = channel.recv_exit_status()
    finally:
        channel.close()
    return CommandResult(status, stdout.decode(errors="replace"), stderr.decode(errors="replace"))
