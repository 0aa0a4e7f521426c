"""Mosquitto for scanbridge: password-file entries, the ACL and config from deploy/mosquitto/,
and a Broker process handle that tests and the fleet bench start on a free loopback port.

Device usernames are device ids: the ACL patterns (%u) then confine each scanner to its own
topics. Bridges get their own users with read access to every scan."""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterable, Optional

TEMPLATES = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto"
_PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes for "$7$"


def password_entry(username: str, password: str, salt: Optional[bytes] = None) -> str:
    """One line of a Mosquitto password_file (PBKDF2-SHA512, the "$7$" format of
    mosquitto_passwd 2.x), so provisioning needs no mosquitto install on the PC that runs it."""
    if ":" in username or not username:
        raise ValueError("bad_username: %r" % username)
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    return "%s:$7$%d$%s$%s" % (username, _PBKDF2_ITERATIONS, base64.b64encode(salt).decode(),
                               base64.b64encode(digest).decode())


def password_file(users: dict[str, str]) -> str:
    return "".join(password_entry(u, p) + "\n" for u, p in sorted(users.items()))


def acl_file(bridges: Iterable[str], root: str = "sb/v1") -> str:
    """ACL text: each bridge user reads scans/status/replies and writes results/commands of every
    device; every other user (a device) only its own topics, by username."""
    text = (TEMPLATES / "acl").read_text()
    bridge_blocks = "".join("user %s\ntopic read %s/#\ntopic write %s/+/+/result\n"
                            "topic write %s/+/+/cmd\n\n" % (b, root, root, root) for b in bridges)
    return text.replace("# @BRIDGES@\n", bridge_blocks)


def config_text(folder: Path, port: int, tls: Optional[dict] = None, persistence: bool = True,
                max_connections: int = -1, bind: str = "127.0.0.1") -> str:
    """A mosquitto.conf from deploy/mosquitto/mosquitto.conf with paths and port filled in."""
    text = (TEMPLATES / "mosquitto.conf").read_text()
    # Nagle's algorithm meets delayed ACKs on small QoS 1 packets: ~40 ms per hop without this
    listener = "listener %d %s\nset_tcp_nodelay true\n" % (port, bind)
    if tls:
        listener += "cafile %s\ncertfile %s\nkeyfile %s\n" % (tls["ca"], tls["cert"], tls["key"])
    repl = {
        "@LISTENER@": listener.rstrip("\n"),
        "@PASSWORD_FILE@": str(folder / "passwd"),
        "@ACL_FILE@": str(folder / "acl"),
        "@PERSISTENCE@": "true" if persistence else "false",
        "@PERSISTENCE_LOCATION@": str(folder) + "/",
        "@MAX_CONNECTIONS@": str(max_connections),
    }
    for k, v in repl.items():
        text = text.replace(k, v)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # mosquitto started as root drops to user "mosquitto", who cannot read a test's files
        text += "\n# started by root for a test: keep the caller's user\nuser root\n"
    return text


def write_broker_files(folder: Path, port: int, devices: dict[str, str], bridges: dict[str, str],
                       **kw) -> Path:
    """mosquitto.conf, passwd and acl in `folder`; returns the config path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passwd").write_text(password_file({**devices, **bridges}))
    (folder / "acl").write_text(acl_file(bridges))
    os.chmod(folder / "passwd", 0o600)
    conf = folder / "mosquitto.conf"
    conf.write_text(config_text(folder, port, **kw))
    return conf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A mosquitto process on 127.0.0.1:port with the scanbridge config; start/kill/restart."""

    def __init__(self, folder: Path, devices: dict[str, str], bridges: dict[str, str],
                 port: Optional[int] = None, **kw):
        self.folder = Path(folder)
        self.port = port or free_port()
        self.conf = write_broker_files(self.folder, self.port, devices, bridges, **kw)
        self.proc: Optional[subprocess.Popen] = None
        self.log = self.folder / "mosquitto.log"

    @staticmethod
    def available() -> bool:
        return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()

    def start(self, timeout: float = 10.0) -> "Broker":
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([exe, "-c", str(self.conf)], stdout=logf, stderr=logf)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: %s" % self.log.read_text()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen on %d" % self.port)

    def kill(self) -> None:
        """SIGKILL: no goodbye, no final save of the persistence file."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its persistence file and exits."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, kill: bool = True) -> "Broker":
        self.kill() if kill else self.stop()
        return self.start()

    @property
    def url(self) -> str:
        return "mqtt://127.0.0.1:%d" % self.port

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _cli(argv=None) -> int:
    """python -m scanbridge_tools.broker entry USER   (password on stdin) -> one passwd line
    python -m scanbridge_tools.broker acl BRIDGE...                    -> the acl_file text"""
    import argparse
    import getpass
    import sys
    p = argparse.ArgumentParser(prog="python -m scanbridge_tools.broker")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("entry", help="a password_file line; the password is read from stdin")
    e.add_argument("user")
    a = sub.add_parser("acl", help="the ACL file for these bridge users")
    a.add_argument("bridges", nargs="+")
    args = p.parse_args(argv)
    if args.cmd == "entry":
        pw = getpass.getpass("password for %s: " % args.user) if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        if not pw:
            print("empty password refused", file=sys.stderr)
            return 2
        print(password_entry(args.user, pw))
    else:
        sys.stdout.write(acl_file(args.bridges))
    return 0


if __name__ == "__main__":
    raise SystemExit(_cli())
