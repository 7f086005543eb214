"""A cached bundle's unpacked copy on a host: made, mended and pruned.

Part of the launcher (:mod:`.launcher`), which is sent as one ``-c`` program
with this file's text where it imports it (see :mod:`.programs`): the same
rules hold. It runs on the host's Python (3.6 and later) with the standard
library only, and older ones must read it without a SyntaxError (no
f-strings), so that the launcher can say they are too old.

A cached bundle is unpacked once, in shiv's layout, so that the next starts
import the agent from there, with its bytecode (:func:`unpack`). What a cache
cleaner or a crash took from that copy comes back from the bundle: a missing
file as it is imported (:class:`Restorer`), a file cut short when the agent's
import fails (:func:`repair`).

Old bundles are pruned: when a new one is unpacked, every other cached bundle
unused for PRUNE_SECONDS goes, with its unpacked copy. "Unused" is known from
the bundle's mtime, touched at each start, and from a shared lock that every
running agent holds on its bundle: one in use is never removed.
"""

import os
import sys

PRUNE_SECONDS = 30 * 86400  # mgmt.remote.protocol.programs.PRUNE_DAYS


def unpack(bundle, site):
    """Where to run a cached bundle not unpacked yet from: unpacked now (shiv's
    layout), so that this start writes the bytecode the next one reads. Run
    from the zip instead (zipimport), the agent compiled its modules in memory
    and the next start compiled them again to write it: two cold starts per
    host, not one. With no room to unpack, or a zip :func:`extract` does not
    read, the zip all the same."""
    target = os.path.dirname(site)
    # A random name made here, not the pid: hosts that share a home over NFS
    # share this cache, and two of them can start with the same pid.
    temp = target + "." + os.urandom(4).hex() + ".partial"
    made = False
    try:
        os.mkdir(temp, 0o700)  # what runs as this login: nobody else's to change
        made = True
        extract(bundle, "site-packages/", temp)
        os.rename(temp, target)  # whole or not at all
        made = False
    except (OSError, ValueError):
        pass  # another start unpacked it first, no room, or not a zip read here
    finally:
        if made:  # a failure or a ^C: leave no partial copy
            import shutil

            shutil.rmtree(temp, True)
    return site if os.path.isdir(site) else bundle + "/site-packages"


class Restorer:
    """The last finder on sys.meta_path of an agent run from a cached bundle's
    unpacked copy: a module of mgmt that copy lacks (removed by hand, or by a
    cleaner of old files in ~/.cache) failed every start after, as "No module
    named", until someone removed the copy. Its missing files are written again
    from the bundle (whose members carry their CRC), and the import goes on.
    The other finders found nothing: it costs only when a file is missing."""

    def __init__(self, bundle, site):
        self.bundle, self.site, self.done = bundle, site, False

    def find_spec(self, name, path, target=None):
        if self.done or name.partition(".")[0] != "mgmt":
            return None
        self.done = True  # once: a module the bundle lacks too stays missing
        import importlib
        import importlib.machinery

        try:
            restored = restore(self.bundle, "site-packages/", os.path.dirname(self.site))
        except OSError as err:  # no room, a read-only cache: said, and nothing removed
            sys.stderr.write("mgmt-remote: cannot restore the files " + self.site + " lacks: "
                             + (err.strerror or str(err)) + "\n")  # fmt: skip
            return None
        except ValueError as err:
            # The bundle is damaged too. Without it the next start has it copied
            # again, and this finder restores from that copy: the unpacked copy
            # stays, which this agent (or another) may still import from.
            import contextlib

            with contextlib.suppress(OSError):
                os.unlink(self.bundle)
            sys.stderr.write("mgmt-remote: the unpacked bundle in " + self.site + " lacks files,"
                             " and its bundle cannot restore them (" + str(err) + "): removed"
                             " the bundle; the next run copies it again\n")  # fmt: skip
            return None
        if not restored:
            return None
        sys.stderr.write("mgmt-remote: restored " + str(restored) + " missing file(s) of "
                         + self.site + " from its bundle\n")  # fmt: skip
        importlib.invalidate_caches()
        return importlib.machinery.PathFinder.find_spec(name, path)


def repair(bundle, site):
    """Rewrite the files of ``site`` whose size is not their member's in ``bundle``,
    and forget what was imported of them; whether there were any."""
    try:
        count = restore(bundle, "site-packages/", os.path.dirname(site), resized=True)
    except (OSError, ValueError):
        return False  # the bundle damaged too, or no room: the import error stands
    if not count:
        return False
    for name in [name for name in sys.modules if name.partition(".")[0] == "mgmt"]:
        del sys.modules[name]
    import importlib

    importlib.invalidate_caches()
    sys.stderr.write("mgmt-remote: rewrote " + str(count) + " damaged file(s) of " + site
                     + " from its bundle\n")  # fmt: skip
    return True


def restore(bundle, prefix, target, resized=False):
    """Write the members of ``bundle`` under ``prefix`` missing in ``target`` (and,
    ``resized``, those of another size there), each whole: a temp file renamed
    into place; how many."""
    with open(bundle, "rb") as f:
        data = f.read()
    count = 0
    for parts, body in members(data, prefix):
        path = os.path.join(target, *parts)
        if os.path.exists(path) and not (resized and os.path.getsize(path) != len(body)):
            continue
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        temp = path + "." + os.urandom(4).hex() + ".partial"
        with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(body)
        os.rename(temp, path)
        count += 1
    return count


def extract(bundle, prefix, target):
    """Write the members of the zip ``bundle`` whose names start with ``prefix``
    into ``target``, at the paths their names give.

    Not zipfile, for a cold start's CPU: unpacking this way took 9.1 ms of
    CPU against zipfile's 25.4 ms (its import, with pathlib, shutil and
    importlib.util, and extractall; python3.11, the 289 KB bundle, medians of
    30 fresh interpreters each). The agent imports part of what zipfile would
    have brought in anyway, so a whole cold start gains less: 77.7 ms against
    81.1 ms, with the warm start at 34 ms (medians of 30, same run)."""
    with open(bundle, "rb") as f:
        data = f.read()
    made = set()
    for parts, body in members(data, prefix):
        folder = os.path.join(target, *parts[:-1])
        if folder not in made:
            os.makedirs(folder, 0o700, exist_ok=True)
            made.add(folder)
        fd = os.open(os.path.join(folder, parts[-1]), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(body)


def members(data, prefix):
    """Each file of the zip ``data`` whose name starts with ``prefix``: its
    name's parts and its contents, read from the central directory with struct
    and inflated with zlib. It reads what shiv writes (deflated or stored
    members, no zip64, bytes such as a shebang before the archive) and raises
    ValueError for anything else: a name that would leave the target (absolute,
    "..", empty parts), another compression, a size or CRC that does not
    match, a damaged directory."""
    import struct
    import zlib

    try:
        end = data.rfind(b"PK\x05\x06")
        if end < 0:
            raise ValueError("no zip directory found")
        count, size, offset = struct.unpack_from("<10xHII", data, end)
        base = end - size - offset  # the shebang's length: offsets count from the archive
        at = end - size
        if base < 0 or at < 0:
            raise ValueError("damaged zip directory")
        for _ in range(count):
            sig, method, crc, packed, length, name_len, extra_len, comment_len, local = (
                struct.unpack_from("<I6xH4xIIIHHH8xI", data, at)
            )
            if sig != 0x02014B50:
                raise ValueError("damaged zip directory")
            name = data[at + 46 : at + 46 + name_len].decode("utf-8")
            at += 46 + name_len + extra_len + comment_len
            if not name.startswith(prefix) or name.endswith("/"):
                continue
            parts = name.split("/")
            if any(part in ("", ".", "..") for part in parts) or method not in (0, 8):
                raise ValueError("member not extracted here: " + name)
            head = base + local
            sig, local_name_len, local_extra_len = struct.unpack_from("<I22xHH", data, head)
            if sig != 0x04034B50:
                raise ValueError("damaged zip member: " + name)
            start = head + 30 + local_name_len + local_extra_len
            body = data[start : start + packed]
            body = zlib.decompress(body, -15) if method == 8 else body
            if len(body) != length or zlib.crc32(body) != crc:
                raise ValueError("damaged zip member: " + name)
            yield parts, body
    except (struct.error, zlib.error) as error:
        # Not "raise ... from None": Python 2 must read this file (see main).
        raise ValueError("damaged zip: " + str(error))  # noqa: B904


def prune(cache, bundle, shiv):
    """Remove each bundle in ``cache`` unused for PRUNE_SECONDS, and what shiv
    unpacked of it in ``shiv``. Runs at every cold start, so it lists folders
    with os.listdir and imports shutil only to remove: glob and shutil cost
    2-3 ms of CPU (python3.11) that a start with nothing to prune would pay."""
    import fcntl
    import time

    for name in os.listdir(cache):
        old = os.path.join(cache, name)
        if name.startswith(".") or not name.endswith(".pyz") or old == bundle:
            continue
        try:
            if os.stat(old).st_mtime > time.time() - PRUNE_SECONDS:
                continue
            fd = os.open(old, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                import shutil

                for entry in os.listdir(shiv):
                    path = os.path.join(shiv, entry)
                    if entry.startswith(name + "_"):  # NAME_BUILD, unpacked
                        shutil.rmtree(path, True)
                    elif entry.startswith("." + name + "_") and entry.endswith("_lock"):
                        os.unlink(path)
                os.unlink(old)
            finally:
                os.close(fd)
        except OSError:
            pass
