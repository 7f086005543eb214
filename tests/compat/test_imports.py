"""Every agent-side module imports under every host Python, from the real bundle.

vermin (``make lint``) reads the source for features newer than 3.6; this runs
it: what only an interpreter notices (an annotation that is evaluated, a
runtime ``list[str]``, a name missing from an old standard library) fails here.
"""

import subprocess
from pathlib import Path

import pytest
from import_agent import agent_modules
from pythons import ALL_VERSIONS, INITIATOR_ONLY, python, version_of

PROBE = Path(__file__).with_name("import_agent.py")


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_every_agent_module_imports(bundle, version):
    interpreter = python(version)
    assert version_of(interpreter) == version, interpreter
    done = subprocess.run(
        [interpreter, "-I", "-S", str(PROBE), str(bundle.site_packages), *INITIATOR_ONLY],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    failures = [line for line in done.stdout.splitlines() if not line.startswith("imported ")]
    assert done.returncode == 0, "\n".join(failures)
    assert f"python {version}" in done.stdout
    imported = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("imported")}
    expected = {"yaml", *agent_modules(str(bundle.site_packages), INITIATOR_ONLY)}
    assert imported == expected
    # The sweep is not vacuous: the engine, every kind, the world and the launcher.
    assert {"mgmt.engine.agent", "mgmt.resources.file", "mgmt.world.exchange",
            "mgmt.net.http_server", "mgmt.remote.protocol.launcher",
            "mgmt.remote.protocol.unpacked"} <= imported  # fmt: skip
    assert not any(name.startswith(INITIATOR_ONLY) for name in imported)
