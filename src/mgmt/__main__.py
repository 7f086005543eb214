"""``python -m mgmt``, the installed ``mgmt`` command and the bundle's entry point.

They start here rather than at mgmt.cli so that a ^C while mgmt.cli itself is
imported (about 20 ms) also ends with the line a later ^C logs, not a traceback.
"""


def main() -> None:
    try:
        from mgmt.cli import main as run
    except KeyboardInterrupt:  # see mgmt.cli.main for a ^C after this
        from mgmt.quickexit import exit_interrupted

        exit_interrupted()
    run()


if __name__ == "__main__":
    main()
