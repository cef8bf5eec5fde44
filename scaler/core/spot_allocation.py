"""Which instance types a mixed-instances group's Spot share launches, by its
``SpotAllocationStrategy`` (an ASG's MixedInstancesPolicy), and so what that share costs.

EC2 Auto Scaling picks the Spot type of each new instance itself; scaler prices the group by
what the strategy will pick, not by its dearest type, and takes Spot risk from the same types:

- ``lowest-price`` (AWS's default when the policy names none): the ``SpotInstancePools``
  (default 2) cheapest Spot pools of a zone, instances spread evenly over them. A zone's pools
  are the group's types, so: the mean Spot price of that many cheapest types.
- ``capacity-optimized``: the pools with the most spare capacity, price ignored. Spare
  capacity is not published; the Spot Instance Advisor's interruption bucket is its trailing
  shadow (a pool short of capacity is the one reclaimed), so the types in the lowest bucket
  among the group's stand for it, priced at the dearest of them (price plays no part).
- ``capacity-optimized-prioritized``: capacity first, then the overrides' order: the first
  listed of the lowest-bucket types.
- ``price-capacity-optimized``: the pools with the most capacity, then the cheapest of them:
  the cheapest of the lowest-bucket types.

A type the Advisor has no bucket for counts as the worst bucket (as the Spot-risk penalty
counts it). Pure: the caller gives the types in the overrides' order and their Spot prices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from scaler.core.model import InstanceType

LOWEST_PRICE: Final = "lowest-price"
CAPACITY_OPTIMIZED: Final = "capacity-optimized"
CAPACITY_OPTIMIZED_PRIORITIZED: Final = "capacity-optimized-prioritized"
PRICE_CAPACITY_OPTIMIZED: Final = "price-capacity-optimized"
STRATEGIES: Final = (
    LOWEST_PRICE,
    CAPACITY_OPTIMIZED,
    CAPACITY_OPTIMIZED_PRIORITIZED,
    PRICE_CAPACITY_OPTIMIZED,
)
DEFAULT_SPOT_INSTANCE_POOLS: Final = 2
"""AWS's default SpotInstancePools for lowest-price."""


def spot_pick(
    types: Sequence[InstanceType],
    spot_usd_per_hour: Sequence[float],
    strategy: str,
    *,
    spot_instance_pools: int = DEFAULT_SPOT_INSTANCE_POOLS,
) -> tuple[float, tuple[InstanceType, ...]]:
    """(USD/hour of the group's next Spot node, the types it may be) for ``types`` in the
    overrides' order with their Spot prices. Raises ValueError for an unknown strategy."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown SpotAllocationStrategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    order = list(range(len(types)))
    if strategy == LOWEST_PRICE:
        n = max(1, min(spot_instance_pools, len(types)))
        cheapest = sorted(order, key=lambda i: spot_usd_per_hour[i])[:n]
        price = sum(spot_usd_per_hour[i] for i in cheapest) / n
        return price, tuple(types[i] for i in cheapest)
    worst = 1 + max((t.spot_interruption_bucket or 0) for t in types)

    def bucket(i: int) -> int:
        b = types[i].spot_interruption_bucket
        return worst if b is None else b

    low = min(bucket(i) for i in order)
    roomy = [i for i in order if bucket(i) == low]
    if strategy == CAPACITY_OPTIMIZED:
        price = max(spot_usd_per_hour[i] for i in roomy)
        return price, tuple(types[i] for i in roomy)
    if strategy == CAPACITY_OPTIMIZED_PRIORITIZED:
        first = roomy[0]
        return spot_usd_per_hour[first], (types[first],)
    cheapest_roomy = min(roomy, key=lambda i: spot_usd_per_hour[i])
    return spot_usd_per_hour[cheapest_roomy], (types[cheapest_roomy],)
