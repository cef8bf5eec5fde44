"""The kube source's nodes as the decisions see them, kept across snapshots.

The node watch hands over nodes as converted (their ``scaler.io/pool`` label's pool); the
decisions see each with the pool of its instance under the last ASG discovery (see
:class:`~scaler.adapters.kube.cluster.KubeCluster`). :class:`NodeViews` keeps both, and the
second in a :class:`~scaler.core.viewchange.SortedViews` by name, which tells the source's
indexes what changed. A node's view is worked out again only when the node changes or a new
instance -> pool map moves its instance, so a snapshot with nothing changed hands back the
same tuple, and after k changes the indexes are told k nodes.

What the pools' Ready nodes report (scaler/core/observed.py) is learned again whenever a
node or the map changed, from the nodes of the (pool, instance type) groups whose reported
fields changed: the groups no change touched report what they reported when last learned,
which is what they left in the learned tables.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Collection, Iterable, Mapping

from scaler.core.model import Resources, Taint
from scaler.core.state import Node
from scaler.core.viewchange import Change, SortedViews

_Group = tuple[str, str]
_Reported = tuple[str | None, str, bool, Resources, tuple[tuple[str, str], ...], tuple[Taint, ...]]


def with_pool(node: Node, instances: Mapping[str, str] | None) -> Node:
    """The node with the pool of its instance (see ``KubeCluster``)."""
    if instances is None or not node.instance_id:
        return node
    pool = instances.get(node.instance_id)
    if pool == node.pool:
        return node
    # A label that is missing or names another group is not the node's pool label: pins to
    # its real pool would pass it by (scaler.core.pinning.label_pools rewrites it).
    return dataclasses.replace(node, pool=pool, pool_labelled=pool is None)


def _group(node: Node) -> _Group | None:
    """The (pool, instance type) whose reports the node can be in (observed.py skips the
    others)."""
    return (node.pool, node.instance_type) if node.pool is not None and node.instance_type else None


def _reported(node: Node) -> _Reported:
    """The fields of a node that scaler/core/observed.py reads to learn its group's reports
    (allocatable, labels, taints of Ready nodes)."""
    return node.pool, node.instance_type, node.ready, node.allocatable, node.labels, node.taints


class NodeViews:
    """Nodes by name as converted (``converted``) and as the decisions see them
    (:meth:`values`), and which groups' reports to learn again (:meth:`to_learn`)."""

    def __init__(self, tell: Callable[[Change[Node]], None] | None = None) -> None:
        self.converted: dict[str, Node] = {}
        """Name -> the node as the watch converted it."""
        self._views: SortedViews[Node] = SortedViews(tell)
        self._pooled_by: Mapping[str, str] | None = None
        """The map the views were worked out with: a map handed over is never changed in
        place (a discovery makes a new one), so the same object is the same map."""
        self._by_instance: dict[str, tuple[str, ...]] = {}
        """Instance id -> the names of the nodes on it (one, but for a node registered
        again under another name): the views a new map can change. Tuples, not sets: a
        one-name set is 216 bytes, four times the tuple, in a cache that holds every node."""
        self._groups: dict[_Group, dict[str, Node]] = {}
        """(pool, instance type) -> its nodes' views, by name."""
        self._learn: set[_Group] | None = None
        """The groups to learn again (None: every node, as after a list)."""
        self._learn_due = True

    def __len__(self) -> int:
        return len(self.converted)

    def replace(self, nodes: dict[str, Node]) -> None:
        """Every node, as a list of them gave it (a node converted equal to before keeps its
        view); every group is learned again."""
        was, self.converted = self.converted, nodes
        for name in was.keys() | nodes.keys():
            old, new = was.get(name), nodes.get(name)
            if new != old:
                self._show(name, old, new)
        self._learn, self._learn_due = None, True

    def put(self, name: str, node: Node | None) -> bool:
        """Node ``name`` as converted now (None: gone); True if it changed."""
        old = self.converted.get(name)
        if node is None:
            self.converted.pop(name, None)
        else:
            self.converted[name] = node
        if node == old:
            return False
        self._show(name, old, node)
        self._learn_due = True
        return True

    def values(self, instances: Mapping[str, str] | None) -> tuple[Node, ...]:
        """The nodes by name, each with its instance's pool under ``instances``."""
        if instances is not self._pooled_by:
            self._pool_again(instances)
        return self._views.values()

    def to_learn(self, nodes: tuple[Node, ...]) -> Iterable[Node] | None:
        """The nodes whose groups' reports may have changed since last asked (``nodes``,
        the last :meth:`values`, when every group may have), or None when no node and no
        map changed since."""
        if not self._learn_due:
            return None
        learn, self._learn, self._learn_due = self._learn, set(), False
        if learn is None:
            return nodes
        groups = self._groups
        return itertools.chain.from_iterable(
            groups[g].values() for g in learn if g in groups
        )

    def _pool_again(self, instances: Mapping[str, str] | None) -> None:
        """The views of the nodes on the instances whose pool a new map changes (every node
        with an instance on the first map)."""
        old, self._pooled_by = self._pooled_by, instances
        if old is not None and instances is not None:
            if old == instances:  # a new discovery of the same instances
                return
            moved: Collection[str] = {i for i, _ in old.items() ^ instances.items()}
        else:
            moved = self._by_instance.keys()
        self._learn_due = True
        for instance in moved:
            for name in self._by_instance.get(instance, ()):
                now, pooled = self._views.get(name), with_pool(self.converted[name], instances)
                if pooled is not now and pooled != now:
                    self._set(name, pooled)

    def _show(self, name: str, old: Node | None, new: Node | None) -> None:
        """The view of node ``name``, converted as ``old`` before and ``new`` now."""
        by_instance = self._by_instance
        if old is not None and old.instance_id:
            names = tuple(n for n in by_instance[old.instance_id] if n != name)
            if names:
                by_instance[old.instance_id] = names
            else:
                del by_instance[old.instance_id]
        if new is not None and new.instance_id:
            by_instance[new.instance_id] = (*by_instance.get(new.instance_id, ()), name)
        self._set(name, None if new is None else with_pool(new, self._pooled_by))

    def _set(self, name: str, view: Node | None) -> None:
        """Node ``name``'s view is ``view`` now (None: none); the groups it left and joined
        are learned again if what they report from it changed."""
        old = self._views.get(name)
        if old is not None and (g := _group(old)) is not None:
            group = self._groups[g]
            del group[name]
            if not group:
                del self._groups[g]
        if view is None:
            self._views.drop(name)
        else:
            self._views.set(name, view)
            if (g := _group(view)) is not None:
                self._groups.setdefault(g, {})[name] = view
        learn = self._learn
        if learn is not None and (old is None or view is None or _reported(old) != _reported(view)):
            for n in (old, view):
                if n is not None and (g := _group(n)) is not None:
                    learn.add(g)
