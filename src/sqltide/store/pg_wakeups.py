"""Wake-ups across processes through PostgreSQL ``LISTEN/NOTIFY``.

:class:`PostgresNotifyTransport` plugs into a :class:`~sqltide.store.wakeups.Notifier` as its
``transport``: every ``publish(channel, key)`` becomes ``NOTIFY sqltide_<channel>`` (sent on a
pooled connection, after the local delivery), and a daemon thread holding one dedicated
connection ``LISTEN``s on every channel and hands what arrives to ``Notifier.deliver``.

Payloads are ``<origin>:<key>``, ``origin`` naming the sending transport, so a process does
not wake itself twice for its own publish. Wake-ups are best effort: a lost one only costs
latency (workers look for work on every heartbeat, long-polls re-read when they time out).
When the listening connection drops, the thread reconnects with backoff and then wakes, once,
every warehouse it has seen work for and every statement someone waits on, since their
notifications may have passed while it was away.

Wiring: ``Runtime.build`` sets ``notifier.transport = store.make_transport(notifier)`` (None
for a store without one); ``Runtime.stop`` closes the notifier, which stops the listener
thread, before it closes the store whose pool the transport sends through.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from contextlib import suppress
from typing import TYPE_CHECKING

import psycopg
from psycopg_pool import ConnectionPool

from ..urls import redact_url
from .pg_connect import conninfo_for

if TYPE_CHECKING:
    from .wakeups import Notifier

logger = logging.getLogger(__name__)

#: What crosses processes: new work for a warehouse, a statement's change (long-polls), a
#: cancel request, new events and deliveries (the bus), rule changes (routers' rule caches
#: and schedulers), a workflow execution made runnable (key: its workflow) and an execution's
#: end (key: its id; long-polls). Anything else published stays in its process.
CHANNELS = (
    "work",
    "statement",
    "cancel",
    "events",
    "deliveries",
    "rules",
    "workflows",
    "execution",
)
PREFIX = "sqltide_"


class PostgresNotifyTransport:
    """Carries a :class:`Notifier`'s publishes to every process on the same database.

    Args:
        url: the ``postgresql://`` URL of the store.
        notifier: where notifications from other processes are delivered.
        pool: connections to send on (the store's); without one the transport opens its own.
        ready_timeout: how long the constructor waits for the listener to be listening.
    """

    #: How often the listener wakes to check whether it should stop (close() wakes it at once).
    poll_seconds: float = 1.0
    #: How long a send may wait for a pooled connection before giving up on the wake-up.
    send_timeout: float = 2.0
    #: Longest pause between reconnection attempts.
    max_backoff: float = 5.0

    def __init__(
        self,
        url: str,
        notifier: Notifier,
        *,
        pool: ConnectionPool | None = None,
        ready_timeout: float = 5.0,
    ):
        self.url = url
        self.notifier = notifier
        self.origin = uuid.uuid4().hex[:16]
        self._safe_url = redact_url(url)
        self._conninfo = conninfo_for(
            url,
            connect_timeout=5,
            application_name="sqltide-listen",
            # a silently vanished server is noticed within ~30 s instead of never
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
        self._own_pool = pool is None
        self._pool = pool or ConnectionPool(
            self._conninfo, min_size=1, max_size=2, name="sqltide-notify", open=True
        )
        # a channel only this transport listens on: close() wakes the listener through it
        self._control = f"{PREFIX}ctl_{self.origin}"
        self._lock = threading.Lock()
        self._warehouses: set[str] = set()
        self._stop = threading.Event()
        self._ready = threading.Event()
        #: Times the listener connected and started listening (1 until a reconnect).
        self.connections = 0
        #: Server process id of the listening connection (None while disconnected).
        self.listener_pid: int | None = None
        self._thread = threading.Thread(target=self._listen, name="sqltide-listen", daemon=True)
        self._thread.start()
        if not self._ready.wait(ready_timeout):
            logger.warning(
                "not yet listening for wake-ups at %s; other processes' work is found by polling "
                "until it is",
                self._safe_url,
            )

    # -- sending -------------------------------------------------------------------------------
    def send(self, channel: str, key: str) -> None:
        if channel not in CHANNELS:
            return  # nobody listens for it in other processes
        if channel == "work":
            with self._lock:
                self._warehouses.add(key)
        self._notify(PREFIX + channel, f"{self.origin}:{key}")

    def _notify(self, channel: str, payload: str, *, quiet: bool = False) -> bool:
        try:
            with self._pool.connection(timeout=self.send_timeout) as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))
            return True
        except Exception as exc:  # best effort: never fail the caller over a wake-up
            if quiet:
                return False
            logger.warning(
                "could not send a wake-up on %s to other processes (%s); they will find the "
                "change by polling",
                channel,
                exc,
            )
            return False

    def close(self) -> None:
        """Stop the listener thread (and the pool, if the transport opened its own)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            # wakes the listener now, not at its next poll (if the pool is gone: at the poll)
            self._notify(self._control, "", quiet=True)
            self._thread.join(self.poll_seconds + 5)
        if self._own_pool:
            self._pool.close()

    # -- listening -----------------------------------------------------------------------------
    def _listen(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            conn: psycopg.Connection | None = None
            try:
                conn = psycopg.connect(self._conninfo, autocommit=True)
                for name in (*(PREFIX + c for c in CHANNELS), self._control):
                    conn.execute(f"LISTEN {name}")
                self.listener_pid = conn.info.backend_pid
                self.connections += 1
                if self.connections > 1:
                    logger.info("listening for wake-ups at %s again", self._safe_url)
                    self._catch_up()
                self._ready.set()
                delay = 0.1
                while not self._stop.is_set():
                    for notify in conn.notifies(timeout=self.poll_seconds):
                        self._handle(notify)
                        if self._stop.is_set():
                            break
            except Exception as exc:
                if self._stop.is_set():
                    break
                pause = delay * (0.5 + random.random() / 2)
                logger.warning(
                    "listening for wake-ups at %s failed (%s: %s); reconnecting in %.1f s",
                    self._safe_url,
                    type(exc).__name__,
                    " ".join(str(exc).split()),
                    pause,
                )
                self._stop.wait(pause)
                delay = min(delay * 2, self.max_backoff)
            finally:
                self.listener_pid = None
                if conn is not None:
                    with suppress(Exception):  # closing a broken connection may fail
                        conn.close()

    def _handle(self, notify: psycopg.Notify) -> None:
        if not notify.channel.startswith(PREFIX) or notify.channel == self._control:
            return
        channel = notify.channel[len(PREFIX) :]
        origin, sep, key = notify.payload.partition(":")
        if not sep:  # sent by something other than a transport: the payload is the key
            origin, key = "", notify.payload
        if origin == self.origin:
            return  # our own publish, delivered locally already
        if channel == "work":
            with self._lock:
                self._warehouses.add(key)
        self._deliver(channel, key)

    def _catch_up(self) -> None:
        """Wake what may have missed a notification while the listener was disconnected."""
        with self._lock:
            warehouses = sorted(self._warehouses)
        for warehouse in warehouses:
            self._deliver("work", warehouse)
        for statement_id in self.notifier.waited_keys("statement"):
            self._deliver("statement", statement_id)
        self._deliver("workflows", "")  # any workflow: the claim threads look once
        for execution_id in self.notifier.waited_keys("execution"):
            self._deliver("execution", execution_id)

    def _deliver(self, channel: str, key: str) -> None:
        try:
            self.notifier.deliver(channel, key)
        except Exception:  # a failing subscriber must not stop the listener
            logger.exception("delivering a %s wake-up for %s failed", channel, key)
