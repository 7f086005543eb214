"""`mgmt run --remote` end to end: real sshd hosts in namespaces, the real agent, real etcd.

The hosts (a, b, c) live for the whole module; each test leaves them clean
(that is part of what is tested) and restores known_hosts if it changed it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import signal
import time
import zipfile
from pathlib import Path

import pytest
from remote_helpers import (
    AGENT_MARK,
    Initiator,
    assert_clean,
    big_bundle,
    file_graph,
    graph_for,
    has_file,
    host_fingerprint,
    login_umask,
    mgmt_run,
    need_hosts,
    save_graph,
    summary,
    wait_until,
)

from mgmt.remote.orchestration.bundlefile import NOT_A_BUNDLE
from support.hosts import ssh_hosts
from support.users import sudo_users

FILES = {
    "file1a": "i am file1a\n",
    "file1b": "i am file1b\n",
    "file2a": "i am file2a, exported from host a\n",
    "file2b": "i am file2b, exported from host b\n",
}


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a", "b", "c"]) as hosts:
        yield hosts


@pytest.fixture(autouse=True)
def _known_hosts_restored(pool):
    yield
    pool.remember_all()


def _tmp_files(host) -> dict:
    return {n: host.read_file(f"/tmp/{n}") for n in host.listdir("/tmp") if n.startswith("file")}


def _children(pid: int) -> list:
    """Pids of a process's children (from every thread of it)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _clear_tmp(*hosts) -> None:
    for host in hosts:
        host.run("rm -rf /tmp/file* /tmp/only-*")


# -- the write-up's example ---------------------------------------------------


def test_writeup_example_runs_on_both_hosts_and_ends_by_itself(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    graphs = [
        graph_for("remote2a.yaml", f"ssh://root@{a.address}:22", tmp_path),
        graph_for("remote2b.yaml", f"ssh://root@{b.address}:22", tmp_path),
    ]
    started = time.monotonic()
    done = mgmt_run(pool, bundle, graphs, "--converged-timeout=5")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert _tmp_files(a) == {k: FILES[k] for k in ("file1a", "file2a", "file2b")}
    assert _tmp_files(b) == {k: FILES[k] for k in ("file1b", "file2a", "file2b")}
    rows = summary(done.stdout)
    assert rows[a.address][:2] == ("converged", "copied")
    assert rows[b.address][:2] == ("converged", "copied")
    # The agents' output came through, each line marked with its host.
    assert re.search(rf"(?m)^{re.escape(a.address)} \| .*file2b", done.stdout)
    assert re.search(rf"(?m)^{re.escape(b.address)} \| .*file2a", done.stdout)
    assert elapsed < 5 + 20
    for host in (a, b):
        assert_clean(host)
        # Private by their own modes, whatever the login's umask (START keeps that
        # for the agent): the cache, its folders, the bundle, the unpacked copy.
        cache = "/root/.cache/mgmt"
        modes = host.run(
            f"stat -c '%n %a' /root/.cache {cache} {cache}/bundles {cache}/shiv"
            f" {cache}/bundles/* {cache}/shiv/* {cache}/shiv/*/site-packages/mgmt/cli.py"
        ).stdout.splitlines()
        assert len(modes) == 7, modes
        assert all(line.endswith((" 700", " 600")) for line in modes), modes
    _clear_tmp(a, b)


def test_second_run_copies_no_bundle_and_a_damaged_cache_is_replaced(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    graphs = [file_graph("a", "a", tmp_path), file_graph("b", "b", tmp_path)]
    first = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
    assert first.returncode == 0, first.stdout + first.stderr
    # Damage both cached copies. a's unpacked copy goes too: its sha256 is checked
    # again, and the bundle replaced. b still runs from what shiv unpacked (made
    # once the sha256 was checked), so its zip is no longer read.
    for host in (a, b):
        host.run("for f in /root/.cache/mgmt/bundles/*.pyz; do echo junk > $f; done")
    a.run("rm -rf /root/.cache/mgmt/shiv/*")
    for host in (a, b):
        host.run(f"rm /tmp/only-{host.name}")  # so that the second run must write it
    second = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
    assert second.returncode == 0, second.stdout + second.stderr
    rows = summary(second.stdout)
    assert rows["b"][:2] == ("converged", "cached")
    assert rows["a"][:2] == ("converged", "copied")
    assert b.read_file("/tmp/only-b") == "i am b"
    assert "Skipping bundle copy, file was cached." in second.stderr
    assert a.read_file("/tmp/only-a") == "i am a"
    for host in (a, b):
        assert_clean(host)
    _clear_tmp(a, b)


def test_files_a_cleaner_took_from_the_unpacked_copy_are_restored_from_the_bundle(
    pool, bundle, tmp_path
):
    a = pool["a"]
    graphs = [file_graph("a", "a", tmp_path)]
    first = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
    assert first.returncode == 0, first.stdout + first.stderr
    # What a cleaner of old files in ~/.cache takes: modules (and their bytecode)
    # of the unpacked copy, which stays in place; every run after failed with
    # "No module named 'mgmt.engine.agent'" until someone removed the copy.
    site = "/root/.cache/mgmt/shiv/*/site-packages/mgmt"
    gone = ("engine/agent", "resources/file")
    for name in gone:
        folder, _, module = name.partition("/")
        a.run(f"rm {site}/{name}.py {site}/{folder}/__pycache__/{module}.*")
    a.run("rm /tmp/only-a")
    second = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
    assert second.returncode == 0, second.stdout + second.stderr
    assert summary(second.stdout)["a"][:2] == ("converged", "cached")
    assert a.read_file("/tmp/only-a") == "i am a"
    for name in gone:  # back, as the bundle has them
        (restored,) = a.run(f"ls {site}/{name}.py").stdout.split()
        with zipfile.ZipFile(bundle) as archive:
            inner = "site-packages/mgmt/" + name + ".py"
            assert a.run(["cat", restored]).stdout.encode() == archive.read(inner)
    assert "restored 2 missing file(s)" in second.stdout
    assert not [f for f in a.run(f"find {site} -name '*.partial'").stdout.split()]
    assert_clean(a)
    _clear_tmp(a)


def test_files_of_the_unpacked_copy_cut_short_are_rewritten_from_the_bundle(pool, bundle, tmp_path):
    """A crash soon after the first start unpacked the bundle leaves its files empty
    (ext4 and XFS write the data later than the names): every start after failed
    importing the agent, with a traceback, said as "failed resources"."""
    a = pool["a"]
    graphs = [file_graph("a", "a", tmp_path)]
    first = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
    assert first.returncode == 0, first.stdout + first.stderr
    site = "/root/.cache/mgmt/shiv/*/site-packages/mgmt"
    cut = ("settings", "cli", "engine/agent")
    a.run("truncate -s0 " + " ".join(f"{site}/{name}.py" for name in cut))
    a.run("rm /tmp/only-a")
    second = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
    assert second.returncode == 0, second.stdout + second.stderr
    assert summary(second.stdout)["a"][:2] == ("converged", "cached")
    assert "rewrote 3 damaged file(s)" in second.stdout
    assert a.read_file("/tmp/only-a") == "i am a"
    with zipfile.ZipFile(bundle) as archive:
        for name in cut:
            inner = archive.read(f"site-packages/mgmt/{name}.py")
            assert a.run(f"cat {site}/{name}.py").stdout.encode() == inner
    assert not [f for f in a.run(f"find {site} -name '*.partial'").stdout.split()]
    assert_clean(a)
    _clear_tmp(a)


def test_an_unpacked_copy_missing_files_beside_a_damaged_bundle_is_restored_next_run(
    pool, bundle, tmp_path
):
    a = pool["a"]
    graphs = [file_graph("a", "a", tmp_path)]
    first = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
    assert first.returncode == 0, first.stdout + first.stderr
    cache = "/root/.cache/mgmt"
    a.run(f"rm {cache}/shiv/*/site-packages/mgmt/engine/agent.py")
    a.run(f"for f in {cache}/bundles/*.pyz; do echo junk > $f; done")
    second = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
    assert second.returncode == 1, second.stdout + second.stderr
    assert "cannot restore them (no zip directory found): removed the bundle;" in second.stdout
    assert a.listdir(f"{cache}/bundles") == []  # the next start has it copied again
    assert len(a.listdir(f"{cache}/shiv")) == 1  # left to what may still import from it
    a.run("rm /tmp/only-a")
    third = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
    assert third.returncode == 0, third.stdout + third.stderr
    assert summary(third.stdout)["a"][:2] == ("converged", "copied")
    assert "restored 1 missing file(s)" in third.stdout
    assert a.read_file("/tmp/only-a") == "i am a"
    assert_clean(a)
    _clear_tmp(a)


def test_a_cached_bundle_the_login_cannot_read_is_copied_again(pool, bundle, tmp_path):
    """A bundle in the login's cache that it cannot read (its mode changed, a copy
    restored as root) beside its unpacked copy: START took it as cached, the
    launcher could not open it and said "a newer mgmt pruned this bundle ...; run
    again", and every run again said the same. It is copied again, as a missing one."""
    a = pool["a"]
    with sudo_users({"plain": "none"}, Path(str(pool.identity) + ".pub")) as users:
        user = users["plain"]
        graphs = [file_graph("a", f"ssh://{user.name}@{a.address}", tmp_path)]
        first = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
        assert first.returncode == 0, first.stdout + first.stderr
        cache = f"{user.home}/.cache/mgmt"
        a.run(f"chown root {cache}/bundles/*.pyz")  # 0700: unreadable for the login
        a.run("rm /tmp/only-a")
        second = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
        assert second.returncode == 0, second.stdout + second.stderr
        assert summary(second.stdout)[a.address][:2] == ("converged", "copied")
        assert a.read_file("/tmp/only-a") == "i am a"
        owners = a.run(f"stat -c '%U %a' {cache}/bundles/*.pyz").stdout.split()
        assert owners == [user.name, "700"]
        a.run("rm -f /tmp/only-a")
    assert_clean(a)


def _wheel(path: Path) -> bytes:
    """A zip as a wheel is: packages, no __main__.py."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mgmt/__init__.py", "")
    return path.read_bytes()


@pytest.mark.parametrize(
    "content",
    [b"hello\n", b"#!/usr/bin/env python3\nprint(1)\n", b"", "wheel", "truncated"],
)
def test_a_bundle_that_is_no_zipapp_is_refused_before_any_host_is_reached(
    pool, bundle, tmp_path, content
):
    """$MGMT_BUNDLE naming the wrong file: it was copied to each host, run there, and
    ended in a traceback ("the agent ended with failed resources")."""
    a = pool["a"]
    if content == "wheel":
        content = _wheel(tmp_path / "mgmt-0.1.0-py3-none-any.whl")
    elif content == "truncated":  # a download cut short
        content = bundle.read_bytes()[:100_000]
    wrong = tmp_path / "mgmt.pyz"
    wrong.write_bytes(content)
    done = mgmt_run(pool, wrong, [file_graph("a", "a", tmp_path)], "--converged-timeout=1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [f"mgmt: error: bundle {wrong}: {NOT_A_BUNDLE}"]
    sha = hashlib.sha256(content).hexdigest()
    assert f"{sha}.pyz" not in a.listdir("/root/.cache/mgmt/bundles")
    assert not a.exists("/tmp/only-a")
    assert_clean(a)


@pytest.mark.parametrize("caching", [[], ["--no-caching"]])
def test_a_full_tmp_fails_in_one_line_and_leaves_no_run_dir(pool, bundle, tmp_path, caching):
    """A full disk has room for the run dir, not for a file in it: START went on past
    sh's "echo: I/O error", to fail later with that noise in the host's message."""
    a = pool["a"]
    a.run("mount -t tmpfs -o size=64k tmpfs /tmp && cat /dev/zero > /tmp/fill || true")
    try:
        done = mgmt_run(pool, bundle, [file_graph("a", "a", tmp_path)], *caching)
        run_dirs = [d for d in a.listdir("/tmp") if d.startswith("mgmt-")]
    finally:
        a.run("umount /tmp")
    assert done.returncode == 1, done.stdout + done.stderr
    result, _, message = summary(done.stdout)["a"]
    assert result == "failed"
    assert message == "cannot prepare the working dir (status 90): " + (
        "mgmt-remote: cannot write in /tmp (no room?)"
    )
    assert run_dirs == []
    assert_clean(a)


def test_a_start_that_ends_mid_copy_is_said_with_its_status_not_as_a_lost_connection(
    pool, bundle, tmp_path
):
    """A bundle larger than SSH's channel window (2 MiB) is still being sent when
    START, which cannot write it, ends: the copy's send found the channel closed
    and the host's row said "connection lost: Socket is closed" (a CI run saw it
    with the real bundle, once)."""
    a = pool["a"]
    bundles = "/root/.cache/mgmt/bundles"
    a.run(f"mkdir -p {bundles} /root/.cache/mgmt/shiv && chmod -R 700 /root/.cache/mgmt")
    a.run(f"rm -rf {bundles}/*")
    # The shebang, then 8 MiB before the zip: zip readers take data before an archive.
    big = tmp_path / "big-mgmt"
    shebang, _, rest = Path(bundle).read_bytes().partition(b"\n")
    big.write_bytes(shebang + b"\n" + b"#" * (8 << 20) + b"\n" + rest)
    graphs = [file_graph("a", "a", tmp_path)]
    try:
        a.run(f"mount --bind -o ro {bundles} {bundles}")
        done = mgmt_run(pool, big, graphs, "--converged-timeout=1")
    finally:
        a.run(f"umount {bundles}", check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    result, _, message = summary(done.stdout)["a"]
    assert result == "failed" and message.startswith("copying the bundle failed (status 98): ")
    assert message.endswith(f"mgmt-remote: cannot write the bundle in {bundles}; give --no-caching")
    assert_clean(a)


@pytest.mark.parametrize(
    "mount", ["--bind -o ro {d} {d}", "-t tmpfs -o size=64k,mode=700 tmpfs {d}"]
)
def test_a_cache_that_cannot_take_the_bundle_says_to_give_no_caching(pool, bundle, tmp_path, mount):
    """A read-only or full ~/.cache/mgmt: the host's row had sh's own words only."""
    a = pool["a"]
    bundles = "/root/.cache/mgmt/bundles"
    # The cache made as a first run makes it (START checks it no further).
    a.run(f"mkdir -p {bundles} /root/.cache/mgmt/shiv && chmod -R 700 /root/.cache/mgmt")
    a.run(f"rm -rf {bundles}/*")
    graphs = [file_graph("a", "a", tmp_path)]
    try:
        a.run(f"mount {mount.format(d=bundles)}")
        done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
        uncached = mgmt_run(pool, bundle, graphs, "--converged-timeout=1", "--no-caching")
    finally:
        a.run(f"umount {bundles}", check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    result, _, message = summary(done.stdout)["a"]
    assert result == "failed" and message.startswith("copying the bundle failed (status 98): ")
    assert message.endswith(f"mgmt-remote: cannot write the bundle in {bundles}; give --no-caching")
    assert uncached.returncode == 0, uncached.stdout + uncached.stderr
    assert a.read_file("/tmp/only-a") == "i am a"
    assert_clean(a)
    _clear_tmp(a)


def test_a_cache_folder_of_another_user_fails_in_one_line(pool, bundle, tmp_path):
    """A bundles folder the login cannot write in (root's, from a copy made as
    root): the row ended with "rm: cannot remove '.../.SHA.pyz.PID': Permission
    denied", the clean-up's failure to remove the copy that was never made."""
    a = pool["a"]
    with sudo_users({"plain": "none"}, Path(str(pool.identity) + ".pub")) as users:
        user = users["plain"]
        bundles = f"{user.home}/.cache/mgmt/bundles"
        a.run(f"mkdir -p {bundles} {user.home}/.cache/mgmt/shiv")
        cache = f"{user.home}/.cache"
        a.run(f"chown -R {shlex.quote(user.name)} {cache} && chmod -R 700 {cache}")
        a.run(f"chown root {bundles}")  # 0700, as START makes it
        done = mgmt_run(pool, bundle, [file_graph("a", f"ssh://{user.name}@{a.address}", tmp_path)])
    assert done.returncode == 1, done.stdout + done.stderr
    result, _, message = summary(done.stdout)[a.address]
    assert result == "failed" and message.startswith("copying the bundle failed (status 98): ")
    assert message.endswith(f"mgmt-remote: cannot write the bundle in {bundles}; give --no-caching")
    assert "rm: " not in message
    assert_clean(a)


def test_a_cache_dir_that_cannot_be_made_fails_in_one_line_and_leaves_no_run_dir(
    pool, bundle, tmp_path
):
    a = pool["a"]
    a.run("mv /root/.cache /root/.cache.kept 2>/dev/null; echo in the way > /root/.cache")
    try:
        done = mgmt_run(pool, bundle, [file_graph("a", "a", tmp_path)], "--converged-timeout=1")
    finally:
        a.run("rm -f /root/.cache; mv /root/.cache.kept /root/.cache 2>/dev/null; true")
    assert done.returncode == 1, done.stdout + done.stderr
    result, _, message = summary(done.stdout)["a"]
    assert result == "failed"
    assert message.startswith("cannot prepare the working dir (status 91): mkdir: ")
    # mkdir -p of two folders under it said the same twice: once on the summary's row.
    assert message.count("mkdir: ") == 1, message
    assert_clean(a)  # no run dir left


# -- live re-push and shutdown ----------------------------------------------------


def test_saving_a_graph_re_copies_it_and_only_the_difference_is_applied(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    graph_a = graph_for("remote2a.yaml", "a", tmp_path)
    graph_b = graph_for("remote2b.yaml", "b", tmp_path)
    with Initiator(pool, bundle, [graph_a, graph_b]) as run:
        # Output is streamed while the run goes on, not after it.
        run.wait_for_line(r"^b \| .*file2a", timeout=30)
        wait_until(lambda: a.exists("/tmp/file2b") and b.exists("/tmp/file2a"), what="exchange")
        # a's own files too: its resources run in parallel, in no set order.
        wait_until(lambda: a.exists("/tmp/file1a") and a.exists("/tmp/file2a"), what="a's files")
        before = a.run("stat -c %i:%Y /tmp/file1a /tmp/file2a").stdout

        edited = graph_b.read_text().replace("exported from host b", "edited on the initiator")
        temp = graph_b.with_suffix(".swp")
        temp.write_text(edited)
        os.replace(temp, graph_b)  # the way editors save
        saved = time.monotonic()

        def updated() -> bool:
            want = "i am file2b, edited on the initiator\n"
            return all(h.read_file("/tmp/file2b") == want for h in (a, b))

        wait_until(updated, timeout=5, what="the edit on both hosts")
        assert time.monotonic() - saved < 5
        run.wait_for_line(r"Copied over new graph definition: .*remote2b\.yaml", timeout=5)
        # Resources the edit did not touch were left alone.
        assert a.run("stat -c %i:%Y /tmp/file1a /tmp/file2a").stdout == before
        run.interrupt()
        code = run.wait(15)
    assert code == 0, run.output
    assert summary(run.output)["a"][0] == "stopped"
    for host in (a, b):
        assert_clean(host)
    _clear_tmp(a, b)


def test_a_bad_edit_is_reported_once_against_the_users_file_and_not_copied(pool, bundle, tmp_path):
    a = pool["a"]
    graph = file_graph("a", "a", tmp_path)
    good = graph.read_text()
    with Initiator(pool, bundle, [graph]) as run:
        wait_until(lambda: has_file(a, "i am a"), 30, "a's file")
        copied = run.output.count("Copied over new graph definition")
        save_graph(graph, good.replace("    state: exists\n", "    state: [exists\n"))
        line = run.wait_for_line(rf"{re.escape(str(graph))}:\d+: .*YAML", timeout=10)
        assert line.endswith("(not copied: the hosts keep the graph they run)"), line
        # Fixed later, the edit applies as any other; the bad one never reached a.
        save_graph(graph, good.replace("i am a", "fixed"))
        wait_until(lambda: has_file(a, "fixed"), 10, "the fixed edit applied")
        run.wait_for_line(r"Copied over new graph definition", timeout=5)
        run.interrupt()
        code = run.wait(15)
    assert code == 0, run.output
    assert run.output.count("Copied over new graph definition") == copied + 1, run.output
    assert len([x for x in run.output.splitlines() if "YAML" in x]) == 1, run.output
    assert "/tmp/mgmt-" not in "".join(x for x in run.output.splitlines() if "YAML" in x)
    assert "Traceback" not in run.output
    assert_clean(a)
    _clear_tmp(a)


def test_an_edit_that_moves_the_graph_to_another_host_is_refused(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    graph = file_graph("a", "a", tmp_path)
    good = graph.read_text()
    assert "remote: a\n" in good
    with Initiator(pool, bundle, [graph]) as run:
        wait_until(lambda: has_file(a, "i am a"), 30, "a's file")
        save_graph(
            graph, good.replace("i am a", "meant for b").replace("remote: a\n", "remote: b\n")
        )
        line = run.wait_for_line(rf"{re.escape(str(graph))}: remote: changed while", timeout=10)
        assert "changed while the run runs" in line and line.endswith("the graph they run)"), line
        save_graph(graph, good.replace("\n", "\nsudo: false\n", 1))
        line = run.wait_for_line(r": sudo: changed while the run runs", timeout=10)
        save_graph(graph, good.replace("i am a", "still a"))  # back on a: applied
        wait_until(lambda: has_file(a, "still a"), 10, "the edit that stays on a")
        run.interrupt()
        code = run.wait(15)
    assert code == 0, run.output
    assert "meant for b" not in a.run("cat /tmp/only-a").stdout
    assert not b.exists("/tmp/only-a")
    assert_clean(a)
    _clear_tmp(a)


def test_interrupt_during_copies_stops_at_once_and_leaves_nothing(pool, bundle, tmp_path):
    # A bundle large enough that three copies are still under way when ^C comes.
    big = big_bundle(tmp_path / "big.pyz", 200 * 1024 * 1024)
    graphs = [file_graph(h.name, h.name, tmp_path) for h in pool]
    with Initiator(pool, big, graphs) as run:
        for host in pool:
            run.wait_for_line(rf"{host.name}: Copying bundle", timeout=30)
        interrupted = time.monotonic()
        run.interrupt(signal.SIGTERM)
        code = run.wait(15)
        assert time.monotonic() - interrupted < 10
    assert code == 0, run.output
    rows = summary(run.output)
    assert {rows[h.name][0] for h in pool} == {"stopped"}, run.output
    for host in pool:
        assert_clean(host)
        assert not any(
            f.startswith(("big", ".")) for f in host.listdir("/root/.cache/mgmt/bundles")
        )


def _etcd_children(pid: int) -> list:
    return [c for c in _children(pid) if _command(c).split(" ")[0].endswith("etcd")]


def test_a_run_that_exchanges_nothing_never_starts_etcd(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    graphs = [file_graph("a", "a", tmp_path), file_graph("b", "b", tmp_path)]
    with Initiator(pool, bundle, graphs) as run:
        wait_until(lambda: a.exists("/tmp/only-a") and b.exists("/tmp/only-b"), 30, "both")
        assert _etcd_children(run.proc.pid) == []
        # The tunnels are there all the same, for an edit that starts to exchange.
        assert [x for x in a.listeners() if x.startswith("127.0.0.1:")]
    assert "etcd for this run" not in run.output
    for host in (a, b):
        assert_clean(host)
    _clear_tmp(a, b)


def test_agents_stop_by_themselves_when_the_initiator_dies(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    graphs = [
        graph_for("remote2a.yaml", "a", tmp_path),  # they exchange: etcd runs
        graph_for("remote2b.yaml", "b", tmp_path),
    ]
    run = Initiator(pool, bundle, graphs)
    try:
        wait_until(lambda: a.exists("/tmp/file2b") and b.exists("/tmp/file2a"), 30, "both")
        etcd = _etcd_children(run.proc.pid)
        assert len(etcd) == 1, [_command(pid) for pid in _children(run.proc.pid)]
    finally:
        run.kill()  # SIGKILL: no cleanup of ours runs, the SSH connections just drop

    def agents_gone() -> bool:
        return not any(AGENT_MARK in c for h in (a, b) for c in h.processes().values())

    wait_until(agents_gone, 10, "the agents to stop")
    # The run's etcd went with the initiator (started from a thread of its own).
    wait_until(lambda: not _alive(etcd[0]), 10, "the initiator's etcd to stop")
    for host in (a, b):
        assert_clean(host)  # the run dirs too: each went with its agent
    _clear_tmp(a, b)


# -- trust ------------------------------------------------------------------------


def test_unknown_host_is_refused_with_its_fingerprint_then_accepted_on_request(
    pool, bundle, tmp_path
):
    a = pool["a"]
    graph = file_graph("a", "a", tmp_path)
    pool.forget(a)
    refused = mgmt_run(pool, bundle, [graph], "--converged-timeout=1")
    assert refused.returncode == 1
    row = summary(refused.stdout)["a"]
    assert row[0] == "failed"
    assert host_fingerprint(a) in row[2] and "--ssh-accept-new" in row[2]
    assert not a.exists("/tmp/only-a")

    accepted = mgmt_run(pool, bundle, [graph], "--converged-timeout=1", "--ssh-accept-new")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert pool.known_hosts_line(a).split()[2] in pool.known_hosts.read_text()
    assert a.read_file("/tmp/only-a") == "i am a"
    assert_clean(a)
    _clear_tmp(a)


def test_a_changed_host_key_is_always_refused(pool, bundle, tmp_path):
    a, c = pool["a"], pool["c"]
    graph = file_graph("a", "a", tmp_path)
    # known_hosts says a's key is c's: what an impostor at a's address would look like.
    impostor = pool.known_hosts_line(c).split()
    pool.known_hosts.write_text(f"{a.address} {impostor[1]} {impostor[2]}\n")
    done = mgmt_run(pool, bundle, [graph], "--converged-timeout=1", "--ssh-accept-new")
    assert done.returncode == 1
    row = summary(done.stdout)["a"]
    assert row[0] == "failed" and "HOST KEY CHANGED" in row[2] and host_fingerprint(a) in row[2]
    assert not a.exists("/tmp/only-a")
    assert pool.known_hosts.read_text().count(a.address) == 1  # nothing was added


# -- faults ---------------------------------------------------------------------------


def test_each_host_fails_alone_and_the_summary_says_why(pool, bundle, tmp_path):
    a, b, c = pool["a"], pool["b"], pool["c"]
    graphs = [
        file_graph("a", "a", tmp_path),
        file_graph("b", f"ssh://root@{b.address}:2222", tmp_path),  # nothing listens there
        file_graph("c", f"ssh://nosuchuser@{c.address}:22", tmp_path),  # login fails
    ]
    done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
    assert done.returncode == 1
    rows = summary(done.stdout)
    assert rows["a"][0] == "converged"
    assert rows[b.address][0] == "failed" and "refused" in rows[b.address][2].lower()
    assert rows[c.address][0] == "failed" and "login failed as nosuchuser" in rows[c.address][2]
    assert a.read_file("/tmp/only-a") == "i am a"
    assert_clean(a)
    _clear_tmp(a)


@pytest.mark.parametrize("banner", ["echo Welcome", "printf 'no newline'"])
def test_a_login_that_prints_a_banner_on_stdout_runs_all_the_same(pool, bundle, tmp_path, banner):
    """bash reads ~/.bashrc under sshd: its banner came before START's answer, which
    was then not found, and the run hung for good (START waited on its stdin)."""
    a = pool["a"]
    a.run(f"echo {shlex.quote(banner)} > /root/.bashrc")
    try:
        done = mgmt_run(pool, bundle, [file_graph("a", "a", tmp_path)], "--converged-timeout=1")
    finally:
        a.run("rm -f /root/.bashrc")
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary(done.stdout)["a"][0] == "converged"
    assert a.read_file("/tmp/only-a") == "i am a"
    assert_clean(a)
    _clear_tmp(a)


def test_one_host_under_two_names_runs_one_agent(pool, bundle, tmp_path):
    a = pool["a"]
    by_name = file_graph("a", "a", tmp_path)  # the pool's ssh_config: a's HostName
    by_address = file_graph("a-again", f"ssh://root@{a.address}", tmp_path)
    done = mgmt_run(pool, bundle, [by_name, by_address], "--converged-timeout=1")
    assert done.returncode == 1, done.stdout + done.stderr
    rows = summary(done.stdout)
    # Both connect at once: whichever logged in first runs, the other is refused.
    (ran, row), (refused, why) = sorted(rows.items(), key=lambda item: item[1][0] != "converged")
    assert {ran, refused} == {"a", a.address}, done.stdout
    assert row[0] == "converged" and why[0] == "failed", done.stdout
    assert why[2].startswith(f"the same host as {ran} (both reach {a.address}:22)")
    assert a.exists("/tmp/only-a") != a.exists("/tmp/only-a-again")
    assert_clean(a)
    _clear_tmp(a)


def test_a_host_whose_resources_failed_is_a_failed_host(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    broken = tmp_path / "broken-b.yaml"
    broken.write_text(
        "graph: broken\n"
        "resources:\n"
        "  exec:\n"
        "  - {name: broken, cmd: 'false'}\n"
        "  file:\n"
        "  - {name: fine, path: /tmp/only-b, content: 'fine'}\n"
        "remote: b\n"
    )
    done = mgmt_run(pool, bundle, [file_graph("a", "a", tmp_path), broken], "--converged-timeout=1")
    assert done.returncode == 1, done.stdout + done.stderr
    rows = summary(done.stdout)
    assert rows["a"][0] == "converged"
    assert rows["b"][0] == "failed" and "failed resources" in rows["b"][2], done.stdout
    assert b.read_file("/tmp/only-b") == "fine"  # the branch that works was applied
    assert_clean(a)
    assert_clean(b)
    _clear_tmp(a, b)


def test_the_agent_makes_folders_with_the_logins_umask_as_a_local_run_does(pool, bundle, tmp_path):
    """START keeps its own files private by their modes, not by a umask the agent
    would inherit: a folder a file resource makes is not 0700 only over SSH."""
    a = pool["a"]
    graph = tmp_path / "modes.yaml"
    graph.write_text(
        "graph: modes\n"
        "resources:\n"
        "  file:\n"
        "  - {name: deep, path: /tmp/only-modes/a/b/f, content: x}\n"
        "  - {name: folder, path: /tmp/only-modes/c/}\n"
        "remote: a\n"
    )
    done = mgmt_run(pool, bundle, [graph], "--converged-timeout=1")
    assert done.returncode == 0, done.stdout + done.stderr
    made = 0o777 & ~login_umask(a)
    assert made & 0o055, "the hosts' login umask must let others read for this test"
    for folder in ("/tmp/only-modes", "/tmp/only-modes/a/b", "/tmp/only-modes/c"):
        mode = int(a.run(["stat", "-c", "%a", folder]).stdout, 8)
        assert mode == made, (folder, oct(mode))
    assert_clean(a)
    _clear_tmp(a)


def test_a_host_that_drops_mid_run_is_reported_while_the_others_go_on(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    graphs = [file_graph("a", "a", tmp_path), file_graph("b", "b", tmp_path)]
    with Initiator(pool, bundle, graphs) as run:
        wait_until(lambda: a.exists("/tmp/only-a") and b.exists("/tmp/only-b"), 30, "both")
        b.kill_sessions()  # the SSH connection and everything it ran die at once
        run.wait_for_line(r"^b \| |connection lost", timeout=10)
        wait_until(lambda: "connection lost" in run.output, 10, "b's failure")
        assert run.proc.poll() is None  # a keeps running
        run.interrupt()
        code = run.wait(15)
    assert code == 1
    rows = summary(run.output)
    assert rows["a"][0] == "stopped" and rows["b"][0] == "failed"
    assert "connection lost" in rows["b"][2]
    assert_clean(a)
    # b went away before its run dir could be removed (as a crashed host's would).
    b.run("rm -rf /tmp/mgmt-*")
    _clear_tmp(a, b)


def test_saving_the_graph_of_a_host_that_ended_leaves_re_copies_to_the_others(
    pool, bundle, tmp_path
):
    a, b = pool["a"], pool["b"]
    graph_a = file_graph("a", "a", tmp_path)
    # b's agent ends by itself (SIGTERM from its own resource): its session ends
    # and closes its connection while a's agent keeps running.
    graph_b = tmp_path / "ends.yaml"
    graph_b.write_text(
        "graph: ends\n"
        "resources:\n"
        "  exec:\n"
        "  - {name: end, cmd: 'kill -TERM $PPID', shell: /bin/sh}\n"
        "remote: b\n"
    )
    with Initiator(pool, bundle, [graph_a, graph_b]) as run:
        wait_until(lambda: a.exists("/tmp/only-a"), 30, "a's file")
        run.wait_for_line(r"^b \| .*Goodbye!", timeout=30)
        wait_until(lambda: not b.listdir("/tmp"), 10, "b's session to clean up")
        # Saved in this order, the watcher handles b's edit (nothing to copy it
        # to any more) before a's.
        graph_b.write_text(graph_b.read_text().replace("graph: ends", "graph: ends2"))
        file_graph("a", "a", tmp_path, content="a again")

        def a_edited() -> bool:
            return a.read_file("/tmp/only-a") == "a again"

        wait_until(a_edited, 10, "a's edit applied")
        run.interrupt()
        code = run.wait(15)
    assert code == 0, run.output
    assert "Traceback" not in run.output
    rows = summary(run.output)
    assert rows["a"][0] == "stopped" and rows["b"][0] == "exited", run.output
    for host in (a, b):
        assert_clean(host)
    _clear_tmp(a, b)


def test_more_remotes_than_cconns_hand_over_their_slots(pool, bundle, tmp_path):
    graphs = [file_graph(h.name, h.name, tmp_path) for h in pool]
    done = mgmt_run(pool, bundle, graphs, "--cconns=1", "--converged-timeout=1")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = summary(done.stdout)
    assert [rows[h.name][0] for h in pool] == ["converged"] * 3
    assert done.stderr.count("its slot goes to the next remote") == 2
    assert "collects no exports" not in done.stderr  # none of these graphs collects
    # One at a time: each host started only after the previous one handed over.
    starts = [m.start() for m in re.finditer(r"(?m)^.* remote: \w: Running\b", done.stderr)]
    handovers = [m.start() for m in re.finditer("its slot goes to the next", done.stderr)]
    assert starts[1] > handovers[0] and starts[2] > handovers[1]
    for host in pool:
        assert host.read_file(f"/tmp/only-{host.name}") == f"i am {host.name}"
        assert_clean(host)
    _clear_tmp(*pool)


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ("moved", "remote: changed while the run runs"),  # it ran on a, the wrong host
        ("broken", "YAML syntax error"),  # b failed, though told it kept its graph
    ],
)
def test_an_edit_saved_while_a_host_waits_for_its_turn_is_checked_as_any_edit(
    pool, bundle, tmp_path, edit, said
):
    """--cconns 1: b starts once a hands over. An edit of b's graph saved
    meanwhile is refused as one saved while b ran would be, and b starts with
    the graph that passed."""
    a, b = pool["a"], pool["b"]
    graph_a, graph_b = file_graph("a", "a", tmp_path), file_graph("b", "b", tmp_path)
    with Initiator(pool, bundle, [graph_a, graph_b], "--cconns=1", "--converged-timeout=2") as run:
        run.wait_for_line(r"remote: a: Running\b", timeout=30)  # b waits for its turn
        text = graph_b.read_text()
        if edit == "moved":
            text = text.replace("remote: b", "remote: a").replace("i am b", "moved")
        else:
            text = text.replace("resources:", "resources: [oops")
        save_graph(graph_b, text)
        code = run.wait(60)
    assert code == 0, run.output
    assert "only-b.yaml" in run.output and said in run.output, run.output
    assert "starting with its last version that passed" in run.output, run.output
    assert b.read_file("/tmp/only-b") == "i am b" and not a.exists("/tmp/only-b")
    assert [row[0] for row in summary(run.output).values()] == ["converged", "converged"]
    for host in (a, b):
        assert_clean(host)
    _clear_tmp(a, b)


def test_a_graph_given_as_a_symlink_is_re_copied_when_its_target_is_saved(pool, bundle, tmp_path):
    a = pool["a"]
    real = tmp_path / "real"
    real.mkdir()
    target = file_graph("a", "a", real)
    link = tmp_path / "a.yaml"
    link.symlink_to(target)
    with Initiator(pool, bundle, [link]) as run:
        wait_until(lambda: a.exists("/tmp/only-a"), 30, "a's file")
        file_graph("a", "a", real, content="edited through the link")  # saves the target

        def edited() -> bool:
            return a.read_file("/tmp/only-a") == "edited through the link"

        wait_until(edited, 10, "the edit applied")
        run.interrupt()
        code = run.wait(15)
    assert code == 0, run.output
    assert_clean(a)
    _clear_tmp(a)


@pytest.mark.parametrize("how", ["link re-pointed", "file replaced by a link"])
def test_a_graph_that_leads_elsewhere_is_followed_there(pool, bundle, tmp_path, how):
    """current -> release-2: the new target was copied once, then its edits never were
    (nor those of a link's target that replaced the graph file)."""
    a = pool["a"]
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    if how == "link re-pointed":
        given = tmp_path / "a.yaml"
        given.symlink_to(file_graph("a", "a", first, content="first"))
    else:
        given = file_graph("a", "a", tmp_path, content="first")  # a file

    def holds(text: str) -> bool:
        return a.read_file("/tmp/only-a") == text

    with Initiator(pool, bundle, [given]) as run:
        wait_until(lambda: a.exists("/tmp/only-a") and holds("first"), 30, "the first")
        temp = given.with_name(given.name + ".new")
        temp.symlink_to(file_graph("a", "a", second, content="second"))
        os.replace(temp, given)  # as `ln -sfn` does it atomically
        wait_until(lambda: holds("second"), 10, "the new target")
        file_graph("a", "a", second, content="second, edited")  # saves the new target
        wait_until(lambda: holds("second, edited"), 10, "the new target's edit")
        run.interrupt()
        code = run.wait(15)
    assert code == 0, run.output
    assert_clean(a)
    _clear_tmp(a)


def test_cconns_below_the_hosts_warns_once_up_front_when_a_graph_collects(pool, bundle, tmp_path):
    """Run in turns, a converged host stops for the next: it never collects the
    exports of hosts started after it, and the run says so before starting any."""
    a, b = pool["a"], pool["b"]
    graphs = [
        graph_for("remote2a.yaml", "a", tmp_path),
        graph_for("remote2b.yaml", "b", tmp_path),
    ]
    done = mgmt_run(pool, bundle, graphs, "--cconns=1", "--converged-timeout=1")
    assert done.returncode == 0, done.stdout + done.stderr
    warning = f"--cconns 1 with 2 hosts: a host stops when it hands over its slot, so {graphs[0]}"
    warning += " (and 1 more) collects no exports of the hosts started after it"
    assert done.stderr.count(warning) == 1, done.stderr
    assert done.stderr.index(warning) < done.stderr.index(" remote: a: ")  # before any host
    assert not a.exists("/tmp/file2b")  # what it warned of: a ran before b exported
    assert b.read_file("/tmp/file2a") == FILES["file2a"]
    for host in (a, b):
        assert_clean(host)
    _clear_tmp(a, b)


def test_converged_timeout_zero_waits_for_each_host_to_report(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    graphs = [file_graph("a", "a", tmp_path), file_graph("b", "b", tmp_path)]
    done = mgmt_run(pool, bundle, graphs, "--converged-timeout=0")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = summary(done.stdout)
    assert rows["a"][0] == rows["b"][0] == "converged", done.stdout
    assert a.read_file("/tmp/only-a") == "i am a"
    assert b.read_file("/tmp/only-b") == "i am b"
    _clear_tmp(a, b)


def test_seeds_point_the_tunnels_at_an_existing_cluster(pool, bundle, tmp_path):
    from mgmt.world.client import EtcdClient
    from mgmt.world.server import EmbeddedEtcd

    a, b = pool["a"], pool["b"]
    graphs = [
        graph_for("remote2a.yaml", f"ssh://root@{a.address}:22", tmp_path),
        graph_for("remote2b.yaml", f"ssh://root@{b.address}:22", tmp_path),
    ]
    with EmbeddedEtcd(tmp_path / "etcd") as cluster:
        done = mgmt_run(
            pool, bundle, graphs, "--converged-timeout=3", "--seeds", cluster.client_url
        )
        client = EtcdClient([cluster.client_url])
        try:
            _, items = client.range("/_mgmt/exported/", prefix=True)
        finally:
            client.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "etcd for this run" not in done.stderr  # none of its own
    assert _tmp_files(a) == {k: FILES[k] for k in ("file1a", "file2a", "file2b")}
    assert _tmp_files(b) == {k: FILES[k] for k in ("file1b", "file2a", "file2b")}
    exported_by = {key.split("/")[3] for key, _value, _rev in items}
    assert exported_by == {a.address, b.address}  # in the cluster we gave
    _clear_tmp(a, b)


def test_seeds_that_refuse_the_credentials_fail_the_run_before_any_host(pool, bundle, tmp_path):
    """Every agent retried for ever, and the run said "converged", exit 0, with
    nothing exchanged."""
    from mgmt.world.server import EmbeddedEtcd

    a = pool["a"]
    graph = graph_for("remote2a.yaml", f"ssh://root@{a.address}:22", tmp_path)
    with EmbeddedEtcd(tmp_path / "etcd") as cluster:
        credentials = cluster.enable_auth()
        done = mgmt_run(
            pool, bundle, [graph], "--converged-timeout=1", "--seeds", cluster.client_url,
            "--etcd-auth-stdin", stdin=f"{credentials.username}:not-the-password\n",
        )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"etcd at {cluster.client_url}: authentication failed" in done.stderr
    assert "Running" not in done.stderr and _tmp_files(a) == {}
    assert_clean(a)
