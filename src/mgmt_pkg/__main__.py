from mgmt_pkg.cli import entry

entry()
