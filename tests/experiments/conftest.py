"""Databases for the experiments tests: a fresh SQLite file, and a fresh database on the real
PostgreSQL; plus a real TCP relay in front of PostgreSQL that a test can stop ("store down")."""
from __future__ import annotations

import socket
import threading

import pytest

from tests.conftest import PG_SERVER, fresh_pg_database

@pytest.fixture(autouse=True)
def spool_dir(tmp_path, monkeypatch):
    """Each test's clients spool under its own tmp dir, never in the checkout's var/."""
    path = tmp_path / "spool"
    monkeypatch.setenv("GREENLIGHT_EXPERIMENTS_SPOOL", str(path))
    return path


@pytest.fixture
def pg_name():
    with fresh_pg_database("gl_exp") as name:
        yield name


@pytest.fixture
def pg_url(pg_name):
    return f"{PG_SERVER}/{pg_name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/experiments.sqlite"
    return request.getfixturevalue("pg_url")


class Relay:
    """Forwards a loopback port to PostgreSQL; ``stop()`` closes the port and every open
    connection, exactly what a client sees when the database server goes away."""

    def __init__(self, target=("127.0.0.1", 5432)):
        self.target = target
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.port = 0
        self.start()

    def start(self):
        """Listen (again, on the same port after a stop: the server is back)."""
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.port = self.server.getsockname()[1]
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.running:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.running:
                client.close()
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.running = False
        self.server.close()
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.sockets.clear()


@pytest.fixture
def relay():
    r = Relay()
    yield r
    r.stop()
