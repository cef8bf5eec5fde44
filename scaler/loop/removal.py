"""Removing a node is a protocol, not one call: taint, read live, then terminate or undo.

1. Taint the node ``scaler.io/removing:NoSchedule``: from here on kube-scheduler puts no new
   pod there (a pod that tolerates every taint excepted, and the live read sees it).
2. Read the node's pods from the API server (:meth:`~scaler.ports.ClusterSource.pods_on`),
   not from the watch cache: a half-open watch leaves the cache stale without an error, and
   a pod bound meanwhile would die with the node.
3. No workload pod there (DaemonSet and mirror pods do not count): terminate the instance.
   A workload pod landed: untaint, and the node is busy again.

A process that dies between 1 and 3 leaves the taint behind; the next decision undoes it,
or removes the node again through the whole protocol if it is still idle and due
(:func:`scaler.core.decide._stale_removal_taints`).
"""

from __future__ import annotations

from scaler.core.model import NO_SCHEDULE, Taint
from scaler.core.state import TAINT_REMOVING, Node
from scaler.ports import Actuator, ClusterSource, Fleet, NotFound, PortError
from scaler.telemetry import NodeWriteFailed, RemovalCancelled, RemoveFailed, Telemetry

REMOVING = Taint(TAINT_REMOVING, "", NO_SCHEDULE)


async def remove_node(
    node: Node,
    *,
    cluster: ClusterSource,
    actuator: Actuator,
    fleet: Fleet,
    observe: Telemetry,
    pool: str | None = None,
) -> bool | None:
    """Run the protocol on ``node``. True: terminated. False: the node or its instance is
    already gone or going (nothing removed now). None: the node stays (a pod landed, or a
    call failed; a taint a failed call leaves behind is the next decision's to undo)."""
    name, pool = node.name, pool or node.pool
    try:
        await actuator.taint(node.name, REMOVING)
    except NotFound as e:
        observe(RemovalCancelled(name, pool, str(e)))
        return False
    except PortError as e:
        observe(RemoveFailed(name, str(e), pool))
        return None
    try:
        landed = [b.pod.key for b in await cluster.pods_on(node.name) if b.is_workload]
    except PortError as e:
        observe(RemoveFailed(name, f"live read of its pods: {e}", pool))
        await _untaint(node.name, actuator, observe)
        return None
    if landed:
        observe(RemovalCancelled(name, pool, f"pod {landed[0]} landed on it"))
        await _untaint(node.name, actuator, observe)
        return None
    try:
        await fleet.terminate(node)
    except NotFound as e:  # already gone or going: nothing was removed now
        observe(RemovalCancelled(name, pool, str(e)))
        return False
    except PortError as e:
        # Maybe terminated, maybe not (a timeout): the taint stays, so no pod lands on a
        # node that may be going; the next decision retries the removal or undoes it.
        observe(RemoveFailed(name, str(e), pool))
        return None
    return True


async def _untaint(node: str, actuator: Actuator, observe: Telemetry) -> None:
    try:
        await actuator.untaint(node, TAINT_REMOVING)
    except NotFound:
        pass
    except PortError as e:  # the next decision sees the taint and tries again
        observe(NodeWriteFailed(node, str(e)))
