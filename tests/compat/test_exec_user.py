"""An exec's ``user`` on the host Pythons before 3.9, whose Popen has no ``user=``:
the command changes who it is in the child (setgroups, setgid, setuid) before exec."""

import os
import pwd

import pytest
from pythons import run_on

PROBE = """\
import subprocess
from mgmt.resources.exec import run_as
how = run_as("nobody", None, "exec[e]")
assert list(how) == ["preexec_fn"], how
done = subprocess.run(["id", "-u"], stdout=subprocess.PIPE, **how)
print(done.stdout.decode().strip())
done = subprocess.run(["id", "-g"], stdout=subprocess.PIPE, **how)
print(done.stdout.decode().strip())
"""


@pytest.mark.parametrize("version", ["3.6", "3.8"])
def test_a_command_runs_as_the_user_under_an_old_python(version):
    if os.geteuid() != 0:
        pytest.skip("running a command as another user needs root")
    nobody = pwd.getpwnam("nobody")
    done = run_on(version, PROBE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(nobody.pw_uid), str(nobody.pw_gid)]
