"""Which of pymongo's errors are an outage (retry later) and which a refusal (never retry).

Every writer decides with this one classifier: an interval is kept in the spool through
an outage and set aside on a refusal; a run's end is retried through an outage and written
without its per-request part on a refusal. Taking an outage for a refusal loses data (a
client-side `ExecutionTimeout`, code 50, once set intervals aside after a paused server);
taking a refusal for an outage blocks for ever (a 16 MB document retried for minutes).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

import bson.errors
import pymongo.errors


class Failure(Enum):
    OUTAGE = "outage"  # the server is away, slow or busy: the same request may pass later
    REFUSAL = "refusal"  # the server (or BSON) will never take this request as it is
    DENIED = "denied"  # authentication or authorisation: a person must act
    DUPLICATE = "duplicate"  # a unique index holds the key


# Server codes of a server that is away, slow, overloaded or changing primaries.
OUTAGE_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        24,  # LockTimeout
        46,  # LockBusy
        50,  # MaxTimeMSExpired (pymongo's client-side ExecutionTimeout too)
        64,  # WriteConcernFailed
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        112,  # WriteConflict
        117,  # ConflictingOperationInProgress
        133,  # FailedToSatisfyReadPreference
        134,  # ReadConcernMajorityNotAvailableYet
        189,  # PrimarySteppedDown
        202,  # NetworkInterfaceExceededTimeLimit
        262,  # ExceededTimeLimit
        279,  # ClientDisconnect
        290,  # TransactionExceededLifetimeLimitSeconds
        9001,  # SocketException
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11601,  # Interrupted
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
        462,  # IngressRequestRateLimitExceeded
    }
)
AUTH_CODES = frozenset({13, 18})  # Unauthorized, AuthenticationFailed
DUPLICATE_CODES = frozenset({11000, 11001, 12582})
_OUTAGE_LABELS = ("RetryableWriteError", "TransientTransactionError", "NetworkError")


def classify(exc: BaseException) -> Failure:
    """What `exc` (raised by pymongo or bson) means for a writer: see the module's doc.

    A server error with a code this module does not know is a refusal when it is about
    the document (a write error), else an outage: retrying an unknown command failure
    costs a bounded wait, setting an interval aside for it would lose it from the sums.
    """
    if isinstance(exc, (bson.errors.BSONError, OverflowError)):
        return Failure.REFUSAL  # DocumentTooLarge and InvalidDocument are BSON errors
    if isinstance(exc, pymongo.errors.DuplicateKeyError):
        return Failure.DUPLICATE
    if isinstance(exc, (pymongo.errors.ConnectionFailure, pymongo.errors.ExecutionTimeout)):
        return Failure.OUTAGE  # AutoReconnect, NetworkTimeout, NotPrimary, server selection
    if isinstance(exc, pymongo.errors.WriteConcernError):
        return Failure.OUTAGE  # the write was taken; its replication timed out
    if isinstance(exc, pymongo.errors.PyMongoError) and (
        exc.timeout or any(exc.has_error_label(label) for label in _OUTAGE_LABELS)
    ):
        return Failure.OUTAGE
    if not isinstance(exc, pymongo.errors.OperationFailure):
        # ProtocolError, InvalidOperation, a configuration found wrong late: none is cured
        # by sending the same again, but none is about the document either.
        return Failure.OUTAGE if isinstance(exc, pymongo.errors.PyMongoError) else Failure.REFUSAL
    codes, per_document = _codes(exc)
    if codes & OUTAGE_CODES:
        return Failure.OUTAGE
    if codes & AUTH_CODES:
        return Failure.DENIED
    if codes and codes <= DUPLICATE_CODES:
        return Failure.DUPLICATE
    return Failure.REFUSAL if per_document else Failure.OUTAGE


def _codes(exc: pymongo.errors.OperationFailure) -> tuple[set[int], bool]:
    """Every server code in `exc` (a bulk write's per-document ones too), and whether
    one of them is about a document (a write error) rather than the command."""
    codes: set[int] = set()
    if isinstance(exc.code, int):
        codes.add(exc.code)
    details: Any = exc.details if isinstance(exc.details, dict) else {}
    per_document = isinstance(exc, pymongo.errors.WriteError)
    if isinstance(exc, pymongo.errors.BulkWriteError):
        codes.discard(65)  # "multiple errors": the real ones are listed below
        for error in details.get("writeConcernErrors") or ():
            codes.add(64 if not isinstance(error, dict) else int(error.get("code") or 64))
        for error in details.get("writeErrors") or ():
            if isinstance(error, dict) and isinstance(error.get("code"), int):
                codes.add(error["code"])
                per_document = True
    elif _is_too_large(exc):
        per_document = True
    return codes, per_document


# Server codes of a document (or an update's result) over the BSON size limit, or a
# document the server cannot hold as it is: refused whatever command carried it.
DOCUMENT_CODES = frozenset({2, 10334, 16837, 17419, 17420, 52, 55, 56, 57, 121})


# How a server says a document is past the BSON limit when its code does not: MongoDB's
# "object to insert too large", and the embedded SecantusDB's `InternalError` (code 1,
# "DocumentTooLargeError: ... larger than 16777216"), which would otherwise read as an
# outage and be retried for minutes.
_TOO_LARGE = re.compile(r"too ?large|larger than (?:the )?(?:max|16777216|16 ?mi?b)", re.I)


def _is_too_large(exc: pymongo.errors.OperationFailure) -> bool:
    return exc.code in DOCUMENT_CODES or _TOO_LARGE.search(str(exc)) is not None
