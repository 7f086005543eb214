"""How the exec kind reads a command: split into words as a shell would, without one.

Without ``shell``, mgmt runs a command split into words, with no shell: quotes
and backslashes are read as a POSIX shell reads them, ``>``, ``;`` and ``$VAR``
stay plain words.
"""

from typing import List

# The longest command: Linux refuses any single argument longer than this
# (MAX_ARG_STRLEN, 32 pages) with E2BIG, so ``shell -c cmd`` could never run a
# longer one; and a bound keeps checking every command of a graph cheap.
MAX_COMMAND = 128 * 1024
_BLANKS = " \t\r\n"


def split_command(cmd: str) -> List[str]:
    """The command split as ``shlex.split`` (POSIX mode) does, in linear time.

    shlex builds each word by string concatenation, which is quadratic in the
    word's length: one 1 MiB word took 21 s. Words here are lists of parts.
    Raises ValueError with shlex's messages for an unclosed quote or a
    trailing backslash.
    """
    words: List[str] = []
    word: List[str] = []
    started = False  # a word is open (a quoted empty one counts)
    i, end = 0, len(cmd)
    while i < end:
        char = cmd[i]
        if char in _BLANKS:
            if started:
                words.append("".join(word))
                word, started = [], False
            i += 1
            continue
        started = True
        if char == "\\":
            if i + 1 >= end:
                raise ValueError("No escaped character")
            word.append(cmd[i + 1])
            i += 2
        elif char == "'":
            close = cmd.find("'", i + 1)
            if close < 0:
                raise ValueError("No closing quotation")
            word.append(cmd[i + 1 : close])
            i = close + 1
        elif char == '"':
            i = _double_quoted(cmd, i + 1, word)
        else:
            word.append(char)
            i += 1
    if started:
        words.append("".join(word))
    return words


def _double_quoted(cmd: str, i: int, word: List[str]) -> int:
    """Read a "..." part from after its quote into ``word``; where it ends."""
    end = len(cmd)
    while i < end:
        char = cmd[i]
        if char == '"':
            return i + 1
        if char == "\\":
            if i + 1 >= end:
                raise ValueError("No escaped character")
            following = cmd[i + 1]
            # Inside double quotes a backslash escapes only " and itself.
            word.append(following if following in '"\\' else "\\" + following)
            i += 2
        else:
            word.append(char)
            i += 1
    raise ValueError("No closing quotation")


def command_argv(cmd: str, shell: str) -> List[str]:
    """``shell -c cmd`` when a shell is given, else the command split like a shell would."""
    return [shell, "-c", cmd] if shell else split_command(cmd)
