"""The Mosquitto helpers: password-file lines in mosquitto_passwd's own format, the ACL and
config generated from deploy/mosquitto, and a broker that really starts with them."""
import base64
import shutil
import subprocess

import pytest

from scanbridge_tools import broker


def test_password_entry_matches_mosquitto_passwd(tmp_path):
    exe = shutil.which("mosquitto_passwd")
    if exe is None:
        pytest.skip("mosquitto_passwd is not installed")
    f = tmp_path / "pw"
    subprocess.run([exe, "-c", "-b", str(f), "dev1", "s3cret pw"], check=True, capture_output=True)
    user, rest = f.read_text().strip().split(":", 1)
    _, kind, iterations, salt, digest = rest.split("$")
    assert (user, kind, iterations) == ("dev1", "7", "101")
    ours = broker.password_entry("dev1", "s3cret pw", salt=base64.b64decode(salt))
    assert ours == "dev1:" + rest


def test_password_entry_refuses_bad_usernames():
    for bad in ("", "a:b"):
        with pytest.raises(ValueError):
            broker.password_entry(bad, "x")


def test_generated_files(tmp_path):
    conf = broker.write_broker_files(tmp_path, 1884, {"dev1": "a"}, {"bridge-1": "b"})
    text = conf.read_text()
    assert "allow_anonymous false" in text and "listener 1884 127.0.0.1" in text
    import re
    assert "password_file %s/passwd" % tmp_path in text and not re.search(r"@[A-Z_]+@", text)
    acl = (tmp_path / "acl").read_text()
    assert "user bridge-1\ntopic read sb/v1/#\n" in acl
    assert "pattern write sb/v1/+/%u/scan" in acl and "pattern read sb/v1/+/%u/result" in acl
    assert [line.split(":")[0] for line in (tmp_path / "passwd").read_text().splitlines()] == ["bridge-1", "dev1"]


@pytest.mark.skipif(not broker.Broker.available(), reason="mosquitto is not installed")
def test_broker_starts_kills_and_restarts_on_its_port(tmp_path):
    import socket
    b = broker.Broker(tmp_path, {"dev1": "a"}, {"bridge-1": "b"}).start()
    try:
        socket.create_connection(("127.0.0.1", b.port), 1).close()
        b.kill()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", b.port), 1).close()
        b.start()
        socket.create_connection(("127.0.0.1", b.port), 1).close()
    finally:
        b.stop()
