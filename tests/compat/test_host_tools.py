"""The host tools the pkg and svc kinds drive, run as the host Pythons run them."""

import pytest
from pythons import HOST_VERSIONS, run_on

PROBE = """\
from mgmt.resources.hosttool import run_tool
done = run_tool(["sh", "-c", "cat; echo \\"$LC_ALL\\""], "script for dnf shell\\n")
print(done.returncode, repr(done.stdout))
"""


@pytest.mark.parametrize("version", HOST_VERSIONS)
def test_a_tool_given_stdin_runs_on_every_host_python(version):
    """Python 3.6's subprocess.run refuses ``stdin=`` beside ``input=`` even when it
    is None: a pkg group that both installs and removes (one `dnf shell` script on
    stdin) failed with "stdin and input arguments may not both be used" on RHEL 8."""
    done = run_on(version, PROBE)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "0 'script for dnf shell\\nC\\n'\n"
