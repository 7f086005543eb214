"""What hosts print, as the initiator shows it: a flood on stderr before the agent
starts (a `python:` wrapper, a login script) neither stalls the start nor is cut."""

import re

import pytest
from remote_helpers import assert_clean, file_graph, has_file, mgmt_run, need_hosts, summary

from support.hosts import ssh_hosts

# 48 lines of 64 KiB on stderr, 3 MiB in all (past paramiko's 2 MiB channel
# window), then the real Python.
NOISY_PYTHON = """#!/bin/sh
python3 -c '
import sys
for i in range(48):
    sys.stderr.write("noise%d-" % i + "x" * 65536 + "-end\\n")
'
exec python3 "$@"
"""


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a"]) as hosts:
        yield hosts


def test_megabytes_on_stderr_before_the_agent_starts_are_shown_whole(pool, bundle, tmp_path):
    # Unread until the launcher said which Python it is, the stderr filled the
    # channel's window, which stdout shares: the host failed after 60 s with
    # "/tmp/noisy-python3 said nothing for 60 s: not the agent's Python?".
    a = pool["a"]
    a.run("cat > /tmp/noisy-python3 && chmod 755 /tmp/noisy-python3", input=NOISY_PYTHON)
    graph = file_graph("a", "a", tmp_path)
    graph.write_text(graph.read_text() + "python: /tmp/noisy-python3\n")
    done = mgmt_run(pool, bundle, [graph], "--converged-timeout=0", timeout=50)
    assert done.returncode == 0, done.stderr[-2000:]
    assert summary(done.stdout)["a"][0] == "converged"
    assert has_file(a, "i am a")
    noise = [line for line in done.stdout.splitlines() if "noise" in line]
    expected = [f"a | noise{i}-" + "x" * 65536 + "-end" for i in range(48)]
    assert noise == expected, [re.sub("x{100,}", "x...", line) for line in noise]
    assert_clean(a)
