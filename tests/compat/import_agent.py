"""Import every agent-side module of mgmt found under a directory; report each failure.

Run by test_imports.py with each host Python as
``python -I -S import_agent.py SITE_PACKAGES [SKIPPED_PREFIX...]`` (-S: only what
SITE_PACKAGES holds can load, as on a bare host). Prints the Python version, one
``imported NAME`` line per module and one ``FAILED NAME: ...`` line per failure;
exits 1 if any failed. Standard library only, and Python 3.6 itself.
"""

import importlib
import os
import sys
import traceback

# Runs the command line when imported.
NOT_IMPORTED = ("mgmt.__main__",)


def agent_modules(site, skipped):
    names = []
    top = os.path.join(site, "mgmt")
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        package = os.path.relpath(folder, site).replace(os.sep, ".")
        for file in sorted(files):
            if not file.endswith(".py"):
                continue
            stem = file[: -len(".py")]
            name = package if stem == "__init__" else package + "." + stem
            if name in NOT_IMPORTED or any(name == p or name.startswith(p + ".") for p in skipped):
                continue
            names.append(name)
    return names


def main():
    site, skipped = sys.argv[1], sys.argv[2:]
    sys.path.insert(0, site)
    print(f"python {sys.version_info[0]}.{sys.version_info[1]}")
    failed = 0
    # PyYAML first: the one dependency, and it must be the bundle's pure-Python one.
    for name in ["yaml", *agent_modules(site, skipped)]:
        try:
            module = importlib.import_module(name)
        except Exception as error:  # every failure, reported with where it happened
            failed += 1
            where = traceback.extract_tb(error.__traceback__)[-1]
            kind = type(error).__name__
            print(f"FAILED {name}: {kind}: {error} ({where.filename}:{where.lineno})")
            continue
        if not os.path.abspath(module.__file__).startswith(os.path.abspath(site) + os.sep):
            failed += 1
            print(f"FAILED {name}: loaded from {module.__file__}, not {site}")
            continue
        print("imported " + name)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
