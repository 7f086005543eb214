"""`fab deploy`: the same run as `mgmt run --remote`, driven by Fabric's conventions."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import zipfile

import pytest
from remote_helpers import REPO, Initiator, assert_clean, file_graph, need_hosts, summary

from support.hosts import ssh_hosts
from support.polling import wait_until

FAB = str(REPO / ".venv" / "bin" / "fab")


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["fa", "fb"]) as hosts:
        yield hosts


def _site(tmp_path, content="hello from fab"):
    graph = tmp_path / "site.yaml"
    graph.write_text(
        "graph: site\nresources:\n  file:\n  - name: motd\n"
        f"    path: /tmp/motd\n    content: {content}\n"
    )
    return graph


def _fab(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [FAB, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=90, check=False
    )


def test_deploy_runs_one_graph_on_every_host_at_once(pool, bundle, tmp_path):
    graph = _site(tmp_path)
    done = _fab(
        pool.env(MGMT_BUNDLE=str(bundle)),
        "-H",
        "fa,fb,fa",  # one host twice runs once: two agents would fight
        "deploy",
        "--graph",
        str(graph),
        "--converged-timeout",
        "1",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = summary(done.stdout)
    assert rows["fa"][0] == rows["fb"][0] == "converged"
    assert (done.stdout + done.stderr).count("remote: fa: Running") == 1, done.stderr  # one agent
    for host in pool:
        assert host.read_file("/tmp/motd") == "hello from fab"
        assert_clean(host)
        host.run("rm -f /tmp/motd")


def test_deploy_beside_a_running_mgmt_run_fails_that_host_and_leaves_the_run_alone(
    pool, bundle, tmp_path
):
    fa = pool["fa"]
    with Initiator(pool, bundle, [file_graph("fa", "fa", tmp_path, "from mgmt run")]) as run:
        wait_until(lambda: fa.exists("/tmp/only-fa"), 60, "the run's file")
        graph = _site(tmp_path)
        args = ["-H", "fa,fb", "deploy", "--graph", str(graph), "--converged-timeout", "1"]
        done = _fab(pool.env(MGMT_BUNDLE=str(bundle)), *args)
        assert done.returncode == 1, done.stdout + done.stderr
        rows = summary(done.stdout)
        assert rows["fa"][0] == "failed" and rows["fb"][0] == "converged", done.stdout
        assert rows["fa"][2].startswith("an attached run's agent runs on this host as root")
        assert not fa.exists("/tmp/motd") and run.proc.poll() is None
        run.interrupt()
        assert run.wait(30) == 0, run.output
    for host in pool:
        assert_clean(host)
        host.run("rm -f /tmp/motd /tmp/only-*")


def test_fabric_identity_and_ssh_config_flags_are_honoured(pool, bundle, tmp_path):
    """-S names the ssh_config and -i the key; HOME has neither (nor any default key)."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    key = tmp_path / "deploy_key"
    shutil.copy(pool.identity, key)
    config = tmp_path / "ssh_config"
    config.write_text(
        "".join(
            f"Host {h.name}\n  HostName {h.address}\n  User root\n"
            f"  UserKnownHostsFile {pool.known_hosts}\n"
            for h in pool
        )
    )
    env = dict(pool.env(MGMT_BUNDLE=str(bundle)), HOME=str(home))
    graph = _site(tmp_path, "keyed")
    args = ["-H", "fa", "deploy", "--graph", str(graph), "--converged-timeout", "1"]
    without_key = _fab(env, "-S", str(config), *args)
    assert without_key.returncode == 1
    assert "login failed as root" in summary(without_key.stdout)["fa"][2]
    done = _fab(env, "-S", str(config), "-i", str(key), *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert pool["fa"].read_file("/tmp/motd") == "keyed"
    pool["fa"].run("rm -f /tmp/motd")


def test_the_users_fabric_yaml_is_honoured(pool, bundle, tmp_path):
    """~/.fabric.yaml names the key: HOME has the hosts' aliases but no key of its own."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        "".join(f"Host {h.name}\n  HostName {h.address}\n  User root\n" for h in pool)
    )
    shutil.copy(pool.known_hosts, home / ".ssh" / "known_hosts")
    key = tmp_path / "deploy_key"
    shutil.copy(pool.identity, key)
    env = dict(pool.env(MGMT_BUNDLE=str(bundle)), HOME=str(home))
    args = ["-H", "fb", "deploy", "--graph", str(_site(tmp_path, "from yaml"))]
    args += ["--converged-timeout", "1"]
    without = _fab(env, *args)
    assert without.returncode == 1 and "login failed" in summary(without.stdout)["fb"][2]
    (home / ".fabric.yaml").write_text(f"connect_kwargs:\n  key_filename: [{key}]\n")
    done = _fab(env, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert pool["fb"].read_file("/tmp/motd") == "from yaml"
    pool["fb"].run("rm -f /tmp/motd")


def test_a_failed_host_fails_the_task(pool, bundle, tmp_path):
    done = _fab(
        pool.env(MGMT_BUNDLE=str(bundle)),
        "-H",
        f"root@{pool['fb'].address}:2222",
        "deploy",
        "--graph",
        str(_site(tmp_path)),
        "--converged-timeout",
        "1",
    )
    assert done.returncode == 1
    assert summary(done.stdout)[pool["fb"].address][0] == "failed"


def test_bundle_is_rebuilt_only_when_stale(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("fabfile", REPO / "fabfile.py")
    fabfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fabfile)
    sources = tmp_path / "src"
    sources.mkdir()
    (sources / "a.py").write_text("x = 1\n")
    bundle = tmp_path / "mgmt"
    assert fabfile.bundle_is_stale(bundle, sources)  # missing
    bundle.write_text("built")
    later = time.time() + 10
    os.utime(bundle, (later, later))
    assert not fabfile.bundle_is_stale(bundle, sources)
    os.utime(sources / "a.py", (later + 10, later + 10))
    assert fabfile.bundle_is_stale(bundle, sources)  # a source is newer


def test_bundle_is_rebuilt_when_the_recipe_that_makes_it_changes(tmp_path):
    """mgmt-pkg's bundle.py and minify.py decide what the bundle holds (PyYAML's
    pin, what is left out): a change there left the old dist/mgmt in use."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fabfile", REPO / "fabfile.py")
    fabfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fabfile)
    assert [p.name for p in fabfile.RECIPE] == ["bundle.py", "minify.py"]
    assert all(p.is_file() for p in fabfile.RECIPE)  # the real ones, where they are
    sources = tmp_path / "src"
    sources.mkdir()
    (sources / "a.py").write_text("x = 1\n")
    recipe = tmp_path / "bundle.py"
    recipe.write_text("REQUIREMENTS = ('PyYAML==6.0.1',)\n")
    bundle = tmp_path / "mgmt"
    bundle.write_text("built")
    later = time.time() + 10
    os.utime(bundle, (later, later))
    assert not fabfile.bundle_is_stale(bundle, sources, (recipe,))
    os.utime(recipe, (later + 10, later + 10))
    assert fabfile.bundle_is_stale(bundle, sources, (recipe,))


def test_a_ctrl_c_while_the_bundle_is_built_is_a_stop(tmp_path, monkeypatch):
    """Invoke turned it into exit 1 without a word."""
    import importlib.util

    from invoke.exceptions import Exit

    import mgmt_pkg.bundle

    spec = importlib.util.spec_from_file_location("fabfile", REPO / "fabfile.py")
    fabfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fabfile)

    def interrupted(target):
        raise KeyboardInterrupt

    monkeypatch.delenv("MGMT_BUNDLE", raising=False)
    monkeypatch.setattr(fabfile, "bundle_is_stale", lambda: True)
    monkeypatch.setattr(mgmt_pkg.bundle, "build_bundle", interrupted)
    with pytest.raises(Exit) as stopped:
        fabfile.ensure_bundle()
    assert stopped.value.code == 130
    assert "interrupted while building the bundle" in str(stopped.value.message)


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--converged-timeout", "abc"], "--converged-timeout 'abc': not a whole number"),
        (["--converged-timeout", "-3"], "--converged-timeout -3: must be between -1 and "),
        (["--cconns", "-1"], "--cconns -1: must be between 0 and "),
        (["--graph", "{missing}"], "--graph {missing}: the graph file does not exist"),
        (["--graph", "{bad}"], "{bad}:2: "),
    ],
)
def test_bad_input_is_one_line_before_a_bundle_is_built_or_a_host_reached(tmp_path, flags, said):
    """As mgmt run's flags; dist/mgmt is not (re)built for a run that cannot start."""
    missing, bad = tmp_path / "missing.yaml", tmp_path / "bad.yaml"
    bad.write_text("graph: g\nremote: [not, a, host]\n")
    good = tmp_path / "good.yaml"
    good.write_text("graph: g\nremote: nohost.invalid\n")
    flags = [flag.format(missing=missing, bad=bad) for flag in flags]
    graph = [] if "--graph" in flags else ["--graph", str(good)]
    env = {k: v for k, v in os.environ.items() if k != "MGMT_BUNDLE"}
    done = _fab(env, "deploy", *graph, *flags)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("deploy: error: " + said.format(missing=missing, bad=bad))
    assert "building" not in done.stdout


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_a_port_out_of_range_is_bad_input_before_any_host_is_reached(tmp_path, port):
    """Fabric takes any number: the host failed as "Connection refused" (or "Servname
    not supported"), with exit 1, where mgmt run refuses such a remote: key."""
    env = {k: v for k, v in os.environ.items() if k != "MGMT_BUNDLE"}
    host = f"root@10.254.255.254:{port}"  # a test address nothing answers on
    done = _fab(env, "-H", host, "deploy", "--graph", str(_site(tmp_path)))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [f"deploy: error: -H {host}: invalid port (1-65535)"]
    assert "building" not in done.stdout and "remote:" not in done.stdout + done.stderr


@pytest.mark.parametrize("hosts", [[], ["-H", "root@10.254.255.254"], ["-H", "a,b"]])
def test_deploy_without_a_graph_says_to_give_one(hosts):
    """With -H it said "mgmt run needs --file GRAPH.yaml (or --remote FILE)": flags
    that fab deploy does not have."""
    env = {k: v for k, v in os.environ.items() if k != "MGMT_BUNDLE"}
    done = _fab(env, *hosts, "deploy")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == ["deploy: give --graph FILE"]
    assert done.stdout == ""


def _checkout(tmp_path):
    """A copy of this checkout's fabfile and sources (no dist/): another checkout."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(REPO / "fabfile.py", checkout)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("mgmt", "mgmt_pkg"):
        shutil.copytree(REPO / "src" / package, checkout / "src" / package, ignore=ignore)
    return checkout


def _fab_in(checkout, *args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MGMT_BUNDLE", "PYTHONPATH")}
    return subprocess.run(
        [FAB, *args], env=env, cwd=checkout, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def test_a_bundle_that_cannot_be_built_is_one_line_and_leaves_no_bundle(tmp_path):
    """mgmt-pkg's errors are not mgmt's: deploy ended in a traceback."""
    checkout = _checkout(tmp_path)
    (checkout / "src" / "mgmt" / "broken.py").write_text("def broken(:\n")
    done = _fab_in(checkout, "-H", "root@127.0.0.1:1", "deploy", "--graph", str(_site(tmp_path)))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("deploy: error: bundle: "), lines
    assert "mgmt/broken.py: not Python" in lines[0]
    assert not (checkout / "dist").exists() or list((checkout / "dist").iterdir()) == []


def test_the_bundle_is_built_from_the_checkout_the_fabfile_is_in(tmp_path):
    """Fabric puts only the fabfile's folder on the path: dist/mgmt was built from the
    installed mgmt (a release, or another checkout's editable install) while its
    staleness was checked against this checkout's sources, which never reached a host."""
    checkout = _checkout(tmp_path)
    (checkout / "src" / "mgmt" / "edited_here.py").write_text("MARK = 1\n")
    done = _fab_in(checkout, "-H", "root@127.0.0.1:1", "deploy", "--graph", str(_site(tmp_path)))
    assert "deploy: building dist/mgmt (stale or missing)" in done.stdout, done.stderr
    with zipfile.ZipFile(checkout / "dist" / "mgmt") as archive:
        assert "site-packages/mgmt/edited_here.py" in archive.namelist()
