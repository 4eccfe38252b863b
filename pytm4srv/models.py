"""All models in one place: ``pytm4srv.models.MachineHold``, as the API docs name them."""

from pytm4srv.db import Base
from pytm4srv.holds.models import MachineHold, MachineHoldSchedule
from pytm4srv.idempotency import IdempotencyKey
from pytm4srv.machines.models import Machine
from pytm4srv.users.models import Role, User

__all__ = [
    "Base",
    "IdempotencyKey",
    "Machine",
    "MachineHold",
    "MachineHoldSchedule",
    "Role",
    "User",
]
