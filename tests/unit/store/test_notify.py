"""In-process wake-ups (``store/notify.py``) and their transport to other processes."""

from __future__ import annotations

import asyncio

from sqltide.store.wakeups import Notifier


class RecordingTransport:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.closed = 0

    def send(self, channel: str, key: str) -> None:
        self.log.append(f"sent {key}")

    def close(self) -> None:
        self.closed += 1


def test_notifier_sends_publishes_to_its_transport_after_local_delivery() -> None:
    notifier = Notifier()
    order: list[str] = []
    transport = RecordingTransport(order)
    notifier.subscribe("work", lambda key: order.append(f"local {key}"))
    notifier.publish("work", "before")  # no transport yet: local only
    notifier.transport = transport
    notifier.publish("work", "duck")
    assert order == ["local before", "local duck", "sent duck"]
    # what a transport delivers is local only: it is not sent back out
    notifier.deliver("work", "remote")
    assert order[-1] == "local remote"
    notifier.close()
    notifier.close()
    assert transport.closed == 1 and notifier.transport is None
    notifier.publish("work", "after")
    assert order[-1] == "local after"


def test_notifier_lists_the_keys_waited_on() -> None:
    async def main() -> list[str]:
        notifier = Notifier()
        with (
            notifier.waiter("statement", "a"),
            notifier.waiter("statement", "b"),
            notifier.waiter("cancel", "c"),
        ):
            return sorted(notifier.waited_keys("statement"))

    assert asyncio.run(main()) == ["a", "b"]
