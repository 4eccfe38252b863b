"""All models in one place: ``pytm4srv.models.MachineHold``, as the API docs name them."""

from pytm4srv.db import Base
from pytm4srv.feed.models import FeedSecret
from pytm4srv.history.models import HistoryEntry
from pytm4srv.holds.models import DeletedFire, DeletionMark, MachineHold, MachineHoldSchedule
from pytm4srv.idempotency import IdempotencyKey
from pytm4srv.machines.models import Machine
from pytm4srv.users.models import Role, User

__all__ = [
    "Base",
    "DeletedFire",
    "DeletionMark",
    "FeedSecret",
    "HistoryEntry",
    "IdempotencyKey",
    "Machine",
    "MachineHold",
    "MachineHoldSchedule",
    "Role",
    "User",
]
