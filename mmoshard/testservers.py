"""Private MariaDB and Redis servers a test starts, freezes (SIGSTOP), thaws, restarts and kills itself: never the shared ones."""

import os
import shutil
import signal
import subprocess
import tempfile

from twisted.internet import reactor as _reactor
from twisted.internet.task import deferLater

from mmoshard.testing import cannotRun, freePort, listening

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
REDIS_SERVER = shutil.which("redis-server")

# One initialised data directory per test run, copied for each server: the
# install takes seconds, a copy a few milliseconds.
_template = {}


def _need(path, what):
    if path and os.path.exists(path):
        return path
    cannotRun(f"{what} is not installed here (private test servers need it)")


class PrivateServer:
    """
    A server process of the test's own on a free loopback port.

    C{await start()} returns once it accepts connections; C{freeze()} and
    C{thaw()} send SIGSTOP and SIGCONT (a hung server: connections open,
    nothing answered); C{kill()} is C{kill -9}; C{await restart()} starts
    it again on the same port with the same data.  The test's cleanup
    stops it and removes its files.
    """

    name = "server"

    def __init__(self, testCase):
        self.testCase = testCase
        self.port = freePort()
        self.dir = tempfile.mkdtemp(prefix=f"mmoshard-{self.name}-")
        self.proc = None
        self.log = os.path.join(self.dir, "server.log")
        testCase.addCleanup(self.cleanup)

    def command(self):
        raise NotImplementedError

    def prepare(self):
        """Make what the server needs on disk before its first start."""

    async def start(self, timeout=30.0):
        if self.proc is None or self.proc.poll() is not None:
            self.prepare()
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)
        await self.waitFor(lambda: listening(self.port, 0.2), timeout,
                           f"{self.name} on port {self.port} did not start")
        return self

    async def waitFor(self, predicate, timeout, message):
        deadline = _reactor.seconds() + timeout
        while not predicate():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{message}: exited {self.proc.returncode}\n{self.output()}")
            if _reactor.seconds() > deadline:
                raise AssertionError(f"{message}\n{self.output()}")
            await deferLater(_reactor, 0.05, lambda: None)

    def output(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def freeze(self):
        """SIGSTOP: the server holds its connections and answers nothing."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self):
        """SIGCONT: a frozen server answers again."""
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self):
        """kill -9, and reap it: a frozen server never runs again, so what it held stays undone."""
        if self.proc is not None and self.proc.poll() is None:
            # SIGKILL ends a stopped process too.  A SIGCONT first let a frozen
            # server run for a moment, long enough on a loaded machine to commit
            # the write it held (test_outages.test_logoutDuringFailedTransferSave
            # then saw a save that was to fail succeed).
            self.proc.kill()
            self.proc.wait()

    async def stop(self):
        """A clean stop (SIGTERM), waiting for the process to exit."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            await self.waitFor(lambda: self.proc.poll() is not None, 30.0,
                               f"{self.name} did not stop")

    async def restart(self):
        await self.stop()
        return await self.start()

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis(PrivateServer):
    """A redis-server of the test's own, keeping nothing on disk."""

    name = "redis"

    def command(self):
        return [_need(REDIS_SERVER, "redis-server"), "--port", str(self.port),
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.dir]

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


class PrivateMariaDB(PrivateServer):
    """A mariadbd of the test's own (root, no password), its data in a temporary directory."""

    name = "mariadb"

    def prepare(self):
        data = os.path.join(self.dir, "data")
        if os.path.isdir(data):
            return
        template = _template.get("mariadb")
        if template is None:
            installer = _need(INSTALL_DB, "mariadb-install-db")
            template = tempfile.mkdtemp(prefix="mmoshard-mariadb-template-")
            # A temporary directory of its own: installs running at once (trial
            # -j workers, other checkouts) collide on /tmp's temporary tables.
            os.mkdir(os.path.join(template, "tmp"))
            subprocess.run([installer, "--no-defaults", f"--datadir={template}/data",
                            "--user=root", "--auth-root-authentication-method=normal",
                            "--skip-test-db", f"--tmpdir={template}/tmp"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _template["mariadb"] = template
        shutil.copytree(os.path.join(template, "data"), data)
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)

    def command(self):
        return [_need(MARIADBD, "mariadbd"), "--no-defaults", f"--datadir={self.dir}/data",
                "--user=root", f"--port={self.port}", "--bind-address=127.0.0.1",
                f"--socket={self.dir}/mysqld.sock", f"--pid-file={self.dir}/mysqld.pid",
                f"--tmpdir={self.dir}/tmp",
                "--skip-log-bin", "--innodb-buffer-pool-size=16M",
                "--innodb-log-file-size=8M", "--skip-name-resolve"]

    def url(self, database="mmoshard"):
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    async def createDatabase(self, database="mmoshard"):
        """Create C{database} (in a thread: pymysql blocks)."""
        from twisted.internet.threads import deferToThread

        def create():
            import pymysql

            conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root")
            try:
                conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            finally:
                conn.close()

        await deferToThread(create)
        return self.url(database)


__all__ = ["PrivateRedis", "PrivateMariaDB"]
