try:
    from mgmt.cli import main
except KeyboardInterrupt:  # a ^C while the command line is imported (see mgmt.cli.main)
    from mgmt.quickexit import exit_interrupted

    exit_interrupted()

main()
