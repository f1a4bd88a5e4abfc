"""Several ``nnjax`` commands in one process, in turn (so one JAX start-up serves them all).

Usage: python _commands.py CMD ARGS... [--then CMD ARGS...]...

Under ``nnjax launch`` the first command joins the group (later ones find it joined).
The exit status is the first non-zero one.
"""

import sys


def main(argv):
    from nnjax import cli

    commands = [[]]
    for arg in argv:
        if arg == "--then":
            commands.append([])
        else:
            commands[-1].append(arg)
    for command in commands:
        status = cli.main(command)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
