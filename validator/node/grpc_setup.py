"""gRPC core's I/O for this process, chosen before gRPC is first imported (it reads its
``GRPC_EXPERIMENTS`` once, when it loads).

gRPC core 1.85 runs a client channel's socket I/O on its EventEngine's own threads, which hand
every completed call to grpc.aio's poller thread, which wakes the asyncio loop: three threads
and several context switches per call. With the experiments ``event_engine_client`` and
``event_engine_for_all_other_endpoints`` off, the channel uses gRPC's older I/O manager, whose
sockets are read by the thread that polls the completion queue, one hand-off fewer. A gateway's
create-if-absent transaction against a one-member etcd on loopback cost the calling process
about 240 us of CPU with gRPC's default and 177-193 us without the two experiments (3,000
sequential calls, two runs each); the watch every node holds is a call on the same kind of
channel.

The environment wins: an operator's own ``GRPC_EXPERIMENTS`` (even empty: gRPC's defaults) is
left as it is. Only the client side is affected; every call's semantics (deadlines, keepalive,
reconnect backoff, TLS) are gRPC's public ones either way.
"""

from __future__ import annotations

import os
import sys

LEGACY_CLIENT_IO = "-event_engine_client,-event_engine_for_all_other_endpoints"

if "grpc" not in sys.modules:
    os.environ.setdefault("GRPC_EXPERIMENTS", LEGACY_CLIENT_IO)
