"""OpenSSH's Include in ssh_config, read for paramiko (mgmt.remote.transport.ssh_include)."""

import io

import paramiko

from mgmt.remote.transport.ssh_include import expanded, has_include


def _lookup(text: str, host: str) -> dict:
    config = paramiko.SSHConfig()
    config.parse(io.StringIO(text))
    return config.lookup(host)


def test_includes_are_read_in_place_relative_to_the_folder_sorted(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "20-b.conf").write_text("Host web\n    Port 2222\n")
    (tmp_path / "conf.d" / "10-a.conf").write_text("Host web\n    HostName 10.0.0.7\n")
    (tmp_path / "extra").write_text("Host db\n    User dba\n")
    main = tmp_path / "config"
    main.write_text('Include conf.d/*.conf "extra"\nInclude missing/*.conf\nHost *\n    User me\n')
    assert has_include(str(main))
    text = expanded(str(main), str(tmp_path))
    assert text.index("10.0.0.7") < text.index("2222") < text.index("dba")
    web = _lookup(text, "web")
    assert (web["hostname"], web["port"], web["user"]) == ("10.0.0.7", "2222", "me")
    assert _lookup(text, "db")["user"] == "dba"


def test_lines_after_an_include_in_a_block_stay_in_that_block(tmp_path):
    (tmp_path / "inc").write_text("Host other\n    User bob\n")
    main = tmp_path / "config"
    main.write_text("Host web\n    Include inc\n    User alice\n")
    text = expanded(str(main), str(tmp_path))
    assert _lookup(text, "web")["user"] == "alice"
    assert _lookup(text, "other")["user"] == "bob"


def test_an_include_of_itself_stops_at_ssh_depth(tmp_path):
    main = tmp_path / "config"
    main.write_text("Include config\nHost web\n    User alice\n")
    assert _lookup(expanded(str(main), str(tmp_path)), "web")["user"] == "alice"


def test_a_file_without_include_and_a_missing_file(tmp_path):
    plain = tmp_path / "config"
    plain.write_text("# Include nothing\nHost web\n    User alice\n")
    assert not has_include(str(plain)) and not has_include(str(tmp_path / "nope"))
