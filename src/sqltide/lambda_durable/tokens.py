"""Checkpoint tokens: which invocation may write an execution's checkpoints, one call at a time.

Lambda hands each invocation of a durable function a checkpoint token; every
``CheckpointDurableExecution`` consumes the token it carries and answers a new one, and a
token that is not the invocation's current one is refused. sqltide's tokens say who they belong
to and are signed, so any process serving the API can check them against the store alone:

- a token names the execution, the lease owner and the claim (the execution's ``replays`` when
  the worker claimed it) of the invocation it was minted for, its place in that invocation's
  sequence, and when it was issued; it is that JSON, after an HMAC-SHA256 under a key derived
  from the server's secret, in base 64 (the model's alphabet, ``[A-Za-z0-9+/]+={0,2}``);
- it is good while its execution is RUNNING under that very lease and claim: once the lease
  is lost, the execution claimed again (by another worker, or this one), stopped, timed out or
  ended, every token of the old invocation is refused ("Invalid checkpoint token ...", which
  the SDK treats as a passing error: the invocation ends, and the lease holder invokes again);
- each is used once: the process that answers a checkpoint remembers, per execution, the
  highest token it consumed and its last answer (:class:`TokenLedger`). A retried request, the
  same ``(ClientToken, CheckpointToken)`` pair (botocore retries with the same body), gets the
  same answer again without writing anything; any other reuse is refused.

The ledger is this process's memory: where several API processes share a store, a token used
at one could be used once more at another. That is harmless: the lease and claim in the token
keep every other invocation out, and the translation of updates (:mod:`.updates`) applies an
update that changes nothing, such as a repeated START or RETRY, as nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import LambdaApiError

#: What the token key is for (so the server secret's other uses never share it).
_KEY_INFO = b"sqltide/lambda-durable/checkpoint-token/v1"
_VERSION = 1
_MAC_BYTES = 16
#: The model's CheckpointToken: at most 2048 characters.
MAX_TOKEN_CHARS = 2048
#: The SDK treats an InvalidParameterValueException whose message starts so as a passing error.
INVALID = "Invalid checkpoint token"


def token_key(server_key: bytes) -> bytes:
    """The key tokens are signed with, derived from the server's secret."""
    return hmac.new(server_key, _KEY_INFO, hashlib.sha256).digest()


def invalid(reason: str) -> LambdaApiError:
    return LambdaApiError(
        f"{INVALID}: {reason}", details={"aws_type": "InvalidParameterValueException"}
    )


@dataclass(frozen=True, slots=True)
class CheckpointToken:
    """What a token says: whose it is, and where in its invocation's sequence."""

    execution_id: str
    #: The worker (lease owner) whose invocation it was minted for.
    owner: str
    #: The claim: the execution's ``replays`` when that worker claimed it.
    claim: int
    #: 0 for the invocation's first token, then one more per checkpoint.
    seq: int
    #: When it was minted (an answer lists the operations that changed since).
    issued_at: float

    def following(self, now: float) -> CheckpointToken:
        """The token a checkpoint made with this one answers."""
        return replace(self, seq=self.seq + 1, issued_at=now)

    def encode(self, key: bytes) -> str:
        payload = json.dumps(
            [_VERSION, self.execution_id, self.owner, self.claim, self.seq, self.issued_at],
            separators=(",", ":"),
        ).encode()
        mac = hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.b64encode(mac + payload).decode("ascii")

    @classmethod
    def decode(cls, key: bytes, text: str) -> CheckpointToken:
        """The token ``text`` is, if this server signed it; :func:`invalid` otherwise."""
        if not isinstance(text, str) or not 0 < len(text) <= MAX_TOKEN_CHARS:
            raise invalid("it is not a token this server issued")
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise invalid("it is not a token this server issued") from None
        mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        expected = hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, expected):
            raise invalid("it is not a token this server issued")
        try:
            version, execution_id, owner, claim, seq, issued_at = json.loads(payload)
        except (ValueError, TypeError):
            raise invalid("it is not a token this server issued") from None
        if version != _VERSION:
            raise invalid(f"version {version!r} is not known here")
        return cls(str(execution_id), str(owner), int(claim), int(seq), float(issued_at))


@dataclass(eq=False)
class _Entry:
    """One execution's tokens as this process saw them."""

    owner: str
    claim: int
    #: The highest ``seq`` consumed (-1: none yet).
    consumed: int = -1
    #: The last checkpoint answered: (checkpoint token, client token, answer).
    last: tuple[str, str | None, dict[str, Any]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class TokenLedger:
    """The tokens this process consumed, per execution (the most recent ``max_entries``)."""

    def __init__(self, max_entries: int = 10_000):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def _entry(self, token: CheckpointToken) -> _Entry:
        with self._lock:
            entry = self._entries.get(token.execution_id)
            if entry is not None and entry.claim > token.claim:
                raise invalid("the execution was claimed again since this token was issued")
            if entry is None or (entry.owner, entry.claim) != (token.owner, token.claim):
                entry = _Entry(token.owner, token.claim)
                self._entries[token.execution_id] = entry
            self._entries.move_to_end(token.execution_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return entry

    def check_current(self, token: CheckpointToken) -> None:
        """Refuse a token this process saw consumed (a read of the state with an old one)."""
        entry = self._entry(token)
        if token.seq <= entry.consumed:
            raise invalid("it was used by an earlier checkpoint; use the token it answered")

    def answered(
        self, token: CheckpointToken, text: str, client_token: str | None
    ) -> dict[str, Any] | None:
        """The answer already given to this very request (a retry of the last checkpoint),
        if any: it is given again even once the execution has ended."""
        with self._lock:
            entry = self._entries.get(token.execution_id)
        if entry is None or (entry.owner, entry.claim) != (token.owner, token.claim):
            return None
        with entry.lock:
            if entry.last is not None and entry.last[:2] == (text, client_token):
                return entry.last[2]
        return None

    def consume(
        self,
        token: CheckpointToken,
        text: str,
        client_token: str | None,
        run: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """Run one checkpoint with ``token`` (``text`` as sent), once: the same request again
        (same token, same client token) gets the same answer; another use is refused."""
        entry = self._entry(token)
        with entry.lock:
            if entry.last is not None and entry.last[:2] == (text, client_token):
                return entry.last[2]
            if token.seq <= entry.consumed:
                raise invalid("it was used by an earlier checkpoint; use the token it answered")
            answer = run()
            entry.consumed = token.seq
            entry.last = (text, client_token, answer)
            return answer
