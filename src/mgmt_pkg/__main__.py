from mgmt_pkg.cli import main

main()
