"""What of a kickstart line an error message may repeat.

pykickstart's errors quote the arguments it could not take: ``rootpw my
secret`` (a password with a space, unquoted) gives "Unexpected arguments to
rootpw command: ['secret']", and ``user --password=my secret`` gives
"unrecognized arguments: secret". On the lines of commands that carry a
password, a passphrase, a key or a proxy's credentials, those values and any
stray word (a password's second half) are masked in the message, so that
checking a kickstart never prints part of a password to a terminal or a log.
"""

from __future__ import annotations

import re
from typing import List, Set

__all__ = ["MASK", "mask_values"]

MASK = "***"
# Options whose value is a secret: passwords, LUKS passphrases, wifi keys,
# activation keys, proxy URLs with user:password.
_SECRET_OPTIONS = ("--password", "--passphrase", "--wpakey", "--activation-key", "--proxy")
# Commands such a value can be on, with the words they take before any that
# is stray (the mount point of part/logvol/raid/btrfs; rootpw's and sshpw's
# only word is the password itself).
_COMMANDS = {"rootpw": 0, "sshpw": 0, "user": 0, "bootloader": 0, "autopart": 0,
             "network": 0, "rhsm": 0, "url": 0, "repo": 0, "liveimg": 0,
             "part": 1, "partition": 1, "logvol": 1, "raid": 1, "btrfs": 1}  # fmt: skip


def _secrets(args: List[str]) -> Set[str]:
    kept = _COMMANDS[args[0]]
    found: Set[str] = set()
    words = 0
    after_option = False  # the word after "--password" given without "="
    for arg in args[1:]:
        if arg.startswith("-"):
            name, equals, value = arg.partition("=")
            secret = name in _SECRET_OPTIONS
            if secret and equals and value:
                found.add(value)
            after_option = secret and not equals
        elif after_option:
            found.add(arg)
            after_option = False
        else:
            words += 1
            if words > kept:
                found.add(arg)
    return found


def mask_values(message: str, args: List[str]) -> str:
    """``message`` with the secrets of the command line ``args`` (``args[0]``
    the command) replaced by ***, where they stand as words of their own."""
    if not args or args[0] not in _COMMANDS:
        return message
    for value in sorted(_secrets(args), key=len, reverse=True):  # one may hold another
        # Whole words only: masking "pw" must not turn "rootpw" into "root***".
        pattern = r"(?<![^\s'\"\[(,=:])" + re.escape(value) + r"(?![^\s'\"\]),:.])"
        message = re.sub(pattern, MASK, message)
    return message
