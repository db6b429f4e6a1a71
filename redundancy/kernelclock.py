"""The kernel's view of clock discipline (``adjtimex(2)``, read-only: modes = 0).

When an NTP or PTP daemon disciplines the clock the kernel knows the current offset estimate and
the maximum error; when none does, ``STA_UNSYNC`` is set and the maximum error grows.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from functools import cache

_STA_UNSYNC = 0x0040
_STA_NANO = 0x2000
_TIME_ERROR = 5


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (Linux); the trailing padding is part of the ABI
    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_padding", ctypes.c_int * 11),
    )


@dataclass(frozen=True)
class ClockState:
    synced: bool
    offset_micros: int
    max_error_micros: int


@cache
def _libc() -> ctypes.CDLL | None:
    # find_library runs ldconfig: once per process, not once per heartbeat
    name = ctypes.util.find_library("c")
    try:
        return None if name is None else ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def read_kernel_clock() -> ClockState | None:
    """The kernel clock's sync state, offset and maximum error; None where adjtimex is absent."""
    libc = _libc()
    if libc is None:
        return None
    try:
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except AttributeError:
        return None
    if state < 0:
        return None
    offset = timex.offset // 1000 if timex.status & _STA_NANO else timex.offset
    synced = state != _TIME_ERROR and not timex.status & _STA_UNSYNC
    return ClockState(bool(synced), int(offset), int(timex.maxerror))
