"""known_hosts as users have it: @cert-authority and @revoked lines, lines that do
not parse; read as ssh reads them, a revoked key refused before any login."""

import pytest
from remote_helpers import assert_clean, file_graph, has_file, mgmt_run, need_hosts, summary

from support.hosts import ssh_hosts
from support.sshd import keygen


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a"]) as hosts:
        yield hosts


@pytest.fixture()
def other_key(tmp_path) -> str:
    """``TYPE BASE64`` of a key no host has."""
    keygen(tmp_path / "other", "other")
    return " ".join((tmp_path / "other.pub").read_text().split()[:2])


def test_a_cert_authority_line_and_a_bad_line_do_not_stop_the_run(
    pool, bundle, tmp_path, other_key
):
    # paramiko's HostKeys.load raised InvalidHostKey ("Incorrect padding") on the
    # marker line: every host failed with "internal error: InvalidHostKey".
    a = pool["a"]
    pool.known_hosts.write_text(
        f"@cert-authority *.example.com {other_key}\n"
        "a line that is no key\n" + pool.known_hosts_line(a)
    )
    try:
        done = mgmt_run(pool, bundle, [file_graph("a", "a", tmp_path)], "--converged-timeout=0")
    finally:
        pool.remember_all()
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary(done.stdout)["a"][0] == "converged" and has_file(a, "i am a")
    assert_clean(a)


@pytest.mark.parametrize("accept_new", [False, True])
def test_a_revoked_key_is_refused_even_when_known_or_accept_new(pool, bundle, tmp_path, accept_new):
    a = pool["a"]
    known = pool.known_hosts_line(a)  # "ADDRESS TYPE BASE64"
    revoked = "@revoked * " + " ".join(known.split()[1:3]) + "\n"
    pool.known_hosts.write_text(revoked + ("" if accept_new else known))
    flags = ["--converged-timeout=0"] + (["--ssh-accept-new"] if accept_new else [])
    a.run("rm -f /tmp/only-a")
    try:
        done = mgmt_run(pool, bundle, [file_graph("a", "a", tmp_path)], *flags)
        after = pool.known_hosts.read_text()
    finally:
        pool.remember_all()
    assert done.returncode == 1, done.stdout + done.stderr
    result, _bundle, message = summary(done.stdout)["a"]
    assert result == "failed" and message.startswith("REVOKED HOST KEY: it showed ssh-ed25519")
    assert not a.exists("/tmp/only-a")
    assert after == revoked + ("" if accept_new else known)  # nothing added
    assert_clean(a)
