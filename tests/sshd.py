"""A loopback "board" for the SSH-target tests: sshd on 127.0.0.1 with a throw-away host key and
user key, logging in as the current user (root in CI). Its PATH puts this venv's python3 first,
as a board's own Python with numpy would be."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(folder: Path):
    """(process, port, ssh options) of a running loopback sshd."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation folder
    port = free_port()
    path = os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"])
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        f"PidFile {folder / 'sshd.pid'}\nSetEnv PATH={path}\n")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stderr=open(folder / "log", "w"))
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    opts = f"-i {folder / 'user_key'} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    return proc, port, opts


def usable() -> str | None:
    """Why no loopback sshd can run here, or None."""
    if not Path(SSHD).exists():
        return "sshd is not installed (apt-get install openssh-server)"
    if os.geteuid() != 0:
        return "a loopback sshd needs root here"
    return None
