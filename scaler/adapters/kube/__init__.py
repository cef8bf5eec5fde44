"""The Kubernetes side of scaler: watch-fed caches, writes, leader election, dry-run.

- :mod:`.convert`  API objects (camelCase dicts) -> core values; pure.
- :mod:`.client`   loading the official client; calls in worker threads; error translation.
- :mod:`.watch`    list + watch of one kind into a cache (a small Reflector).
- :mod:`.cluster`  ``KubeCluster``: ``ClusterSource`` and ``Actuator`` on the live cluster.
- :mod:`.actuator` the writes (annotate, Events, cordon, taint, evict).
- :mod:`.leader`   ``LeaderElector`` on a coordination.k8s.io/v1 Lease.
- :mod:`.dryrun`   ``DryRunActuator``: logs writes instead of making them.

What is watched and written, and the RBAC each call needs: docs/kubernetes.md.
"""

from scaler.adapters.kube.client import load_api_client
from scaler.adapters.kube.cluster import KubeCluster
from scaler.adapters.kube.dryrun import DryRunActuator
from scaler.adapters.kube.leader import LeaderElector

__all__ = ["DryRunActuator", "KubeCluster", "LeaderElector", "load_api_client"]
