"""A secondary of a via: run (mgmt.remote.hierarchy.secondary) runs the fan-out on
a host: what it imports, the initiator-side orchestration and transport modules
included, imports under every host Python, from the bundle, without paramiko."""

import subprocess

import pytest
from pythons import HOST_VERSIONS, python, version_of

PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
from mgmt.remote.hierarchy.secondary import run_secondary
from mgmt.remote.orchestration.etcd import SeedsEtcd
from mgmt.remote.transport.openssh import OpenSshRunner
assert not [m for m in sys.modules if m.split(".")[0] in ("paramiko", "fabric", "invoke")]
print("secondary imports under %d.%d" % sys.version_info[:2])
"""


@pytest.mark.parametrize("version", HOST_VERSIONS)
def test_the_secondary_mode_imports_under_each_host_python(bundle, version):
    interpreter = python(version)
    assert version_of(interpreter) == version, interpreter
    done = subprocess.run(
        [interpreter, "-I", "-S", "-c", PROBE, str(bundle.site_packages)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    assert f"secondary imports under {version}" in done.stdout
