from mgmt.cli import main

main()
