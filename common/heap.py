"""``settle_heap()``: call once a service has loaded everything it keeps for its lifetime.

CPython's cyclic garbage collector walks every tracked object of the oldest generation on
each full collection, and a busy service triggers collections all the time (every request
allocates dicts, protobuf wrappers, futures). Our processes keep large, never-freed
structures: botocore service models, compiled validators and policies, generated protobuf
descriptors. ``gc.freeze()`` moves everything alive at start-up to a permanent generation
the collector ignores, so collections only walk what requests allocate.

Measured with ``python -m services.trail.bench`` (KMS Encrypt over gRPC, c=32, 2 cores):
KMS CPU per Encrypt 552 -> 460 us, throughput +23%. Objects created later are collected
as usual; only the start-up heap is exempt (it would never be garbage anyway).
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect once, then exempt everything still alive from future collections."""
    gc.collect()
    gc.freeze()
