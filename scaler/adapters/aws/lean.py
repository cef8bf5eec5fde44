"""One AWS session for the process, with a botocore data loader that keeps only what scaler uses.

botocore keeps every data file it loads, whole, for the life of the session. That includes
the documentation strings, and it builds everything as OrderedDicts. For the EC2 client that
is 13.5 MiB resident, and the endpoint table adds 6.8 MiB. Together that is a seventh of the
controller's 150 MB budget (benchmarks/controller_memory.py), spent to call 4 of EC2's
~700 operations. :class:`LeanLoader` reads the same files from the same places and keeps:

- of ``ec2``'s API model, the operations in :data:`EC2_OPERATIONS` and the shapes they reach
  (of ``pricing``'s, :data:`PRICING_OPERATIONS` likewise);
- of every API model, everything but the ``documentation`` strings;
- of the endpoint table, every partition and the services in :data:`ENDPOINT_SERVICES`
  (scaler's, and those the credential chain may call). Any other service still resolves,
  from its partition's defaults, which is also what botocore does for a service new since
  its own release.

Plain dicts replace OrderedDicts everywhere (insertion order is kept either way).
tests/adapters/test_aws_lean.py holds :data:`EC2_OPERATIONS` equal to the EC2 calls in the code,
so a new call cannot meet a model that lacks it.

Every tick describes every instance of every group (a 2.1 MiB XML answer at 5,000
instances), and that parse is the live process's peak: 13.2 MiB at once by tracemalloc.
Three things bring it to 5.4 MiB: of the ``Instance`` shape only the members scaler reads
are kept (:data:`SHAPE_MEMBERS`), so the parser builds two fields into each instance's dict,
not eleven; the session's XML parsers (:class:`LeanParserFactory`) feed an answer to expat
64 KiB at a time, so it holds no copy of the whole answer while the tree is built; and an
ASG's instances are cut to those two fields as expat ends each, so the tree never holds the
others.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Final, TypeVar, cast
from xml.etree import ElementTree

from aiobotocore.parsers import AioEC2QueryParser, AioQueryParser, AioResponseParserFactory
from aiobotocore.session import AioSession, get_session
from botocore.loaders import Loader, create_loader, instance_cache
from botocore.parsers import ResponseParserError

EC2_OPERATIONS: Final = frozenset(
    {
        "DescribeInstanceTypes",
        "DescribeLaunchTemplateVersions",
        "DescribeSpotPriceHistory",
        "DescribeSubnets",
    }
)
"""Every EC2 operation scaler calls; the rest of EC2's model is not kept."""

PRICING_OPERATIONS: Final = frozenset({"GetProducts"})
"""Every Price List operation scaler calls (on-demand prices, pricing.py)."""

_OPERATIONS: Final = {"ec2": EC2_OPERATIONS, "pricing": PRICING_OPERATIONS}

SHAPE_MEMBERS: Final = {"autoscaling": {"Instance": frozenset({"InstanceId", "LifecycleState"})}}
"""Members kept of shapes parsed by the thousand: each tick describes every instance of
every group, and scaler reads these two fields of each (fleet.py); the parser skips the
others (type, zone, health, launch template, ...) instead of building them into every
instance's dict. Read another field, and keep it here."""

ENDPOINT_SERVICES: Final = frozenset(
    {"autoscaling", "ec2", "sqs", "sts", "sso", "sso-oidc", "signin", "api.pricing"}
)
"""Endpoint-table entries kept: scaler's services, and those the credential chain calls
(STS for IRSA web identity and assumed roles, SSO and its OIDC for SSO profiles)."""

_DOCS: Final = frozenset({"documentation", "documentationUrl"})

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _instance_cache(method: _Method) -> _Method:
    """botocore's ``instance_cache``, typed (botocore ships no type hints): the decorated
    method keeps its signature."""
    return cast(_Method, instance_cache(method))


class LeanLoader(Loader):  # type: ignore[misc]
    """botocore's :class:`~botocore.loaders.Loader`, keeping less of what it loads.

    ``load_data_with_path`` is the one method every data file passes through. Its cache
    key is the method's name, so this override's result replaces the full data in the
    cache, and the full data is freed."""

    @_instance_cache
    def load_data_with_path(self, name: str) -> tuple[Any, str]:
        data, path = super().load_data_with_path(name)
        return lean(name, data), path


def lean(name: str, data: Any) -> Any:
    """What of data file ``name`` (``ec2/2016-11-15/service-2``, ``endpoints``) is kept."""
    if name == "endpoints" and isinstance(data, Mapping):
        return _endpoints(data)
    if name.endswith("/service-2") and isinstance(data, Mapping):
        service = name.split("/", 1)[0]
        keep = _OPERATIONS.get(service)
        if keep is not None:
            data = _only_operations(data, keep)
        data = _plain(data, drop=_DOCS)
        for shape, members in SHAPE_MEMBERS.get(service, {}).items():
            _only_members(data["shapes"][shape], members)
        return data
    return _plain(data)


def _endpoints(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = _plain(data)
    for partition in out.get("partitions") or ():
        services = partition.get("services") or {}
        partition["services"] = {k: v for k, v in services.items() if k in ENDPOINT_SERVICES}
    return out


def _only_operations(model: Mapping[str, Any], keep: Iterable[str]) -> dict[str, Any]:
    """The model with only the operations in ``keep`` and the shapes they reach."""
    operations = model.get("operations") or {}
    shapes = model.get("shapes") or {}
    kept_ops = {name: operations[name] for name in sorted(keep) if name in operations}
    todo: list[str] = []
    for op in kept_ops.values():
        todo += [ref["shape"] for ref in (op.get("input"), op.get("output")) if ref]
        todo += [ref["shape"] for ref in op.get("errors") or ()]
    reached: set[str] = set()
    while todo:
        name = todo.pop()
        if name in reached or name not in shapes:
            continue
        reached.add(name)
        shape = shapes[name]
        refs = [*(shape.get("members") or {}).values()]
        refs += [shape[k] for k in ("member", "key", "value") if k in shape]
        todo += [ref["shape"] for ref in refs]
    return {
        **model,
        "operations": kept_ops,
        "shapes": {k: v for k, v in shapes.items() if k in reached},
    }


def _only_members(shape: dict[str, Any], keep: frozenset[str]) -> None:
    shape["members"] = {k: v for k, v in shape["members"].items() if k in keep}
    if "required" in shape:
        shape["required"] = [k for k in shape["required"] if k in keep]


def _plain(value: Any, drop: frozenset[str] = frozenset()) -> Any:
    """A copy made of plain dicts and lists, without the keys in ``drop`` at any depth."""
    if isinstance(value, Mapping):
        return {k: _plain(v, drop) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [_plain(v, drop) for v in value]
    return value


_FEED: Final = 1 << 16
"""Bytes of an XML answer handed to expat at a time."""


def _pieces(view: memoryview) -> Iterator[memoryview]:
    """``view`` in :data:`_FEED`-byte pieces (no copies)."""
    return (view[start:start + _FEED] for start in range(0, len(view), _FEED))


class _FedInPieces:
    """botocore's XML parse, with the answer fed to expat :data:`_FEED` bytes at a time
    (fed whole, expat buffers all of it beside the tree it builds: 4 MiB more at the
    peak of a 5,000-instance discovery); and the members of the lists named in
    :attr:`_PRUNED` cut down to the fields kept, each as expat ends it, so the tree never
    holds the rest (that discovery's parse: 10.2 -> 5.4 MiB at its peak)."""

    DEFAULT_ENCODING: str
    _PRUNED: ClassVar[Mapping[str, frozenset[str]]] = {}
    """List element -> the fields kept of each of its ``member`` elements."""

    def _parse_xml_string_to_dom(self, xml_string: bytes) -> ElementTree.Element:
        view = memoryview(xml_string)
        try:
            if not self._PRUNED:
                parser = ElementTree.XMLParser(
                    target=ElementTree.TreeBuilder(), encoding=self.DEFAULT_ENCODING
                )
                for piece in _pieces(view):
                    parser.feed(piece)
                return parser.close()
            return self._pruned_tree(view)
        except ElementTree.ParseError as e:
            # As botocore says it (its retry handling reads this error).
            raise ResponseParserError(
                f"Unable to parse response ({e}), invalid XML received. Further retries "
                f"may succeed:\n{xml_string!r}"
            ) from e

    def _pruned_tree(self, view: memoryview) -> ElementTree.Element:
        # The pull parser takes its encoding from the answer's XML declaration, UTF-8 by
        # default (botocore names UTF-8; AWS writes UTF-8).
        pruned = self._PRUNED
        parser: ElementTree.XMLPullParser[Any] = ElementTree.XMLPullParser(
            events=("start", "end")
        )
        path: list[str] = []  # the local names of the open elements
        root: ElementTree.Element | None = None

        def read() -> None:
            nonlocal root
            # Start and end events carry the element.
            events = cast(Iterator[tuple[str, ElementTree.Element]], parser.read_events())
            for event, elem in events:
                name = elem.tag.rpartition("}")[2]
                if event == "start":
                    path.append(name)
                    continue
                path.pop()
                if name == "member" and path and (keep := pruned.get(path[-1])) is not None:
                    for child in [c for c in elem if c.tag.rpartition("}")[2] not in keep]:
                        elem.remove(child)
                root = elem  # the last element ended is the root

        for piece in _pieces(view):
            parser.feed(piece)
            read()
        parser.close()
        read()
        if root is None:
            raise ElementTree.ParseError("no element found")
        return root


class _QueryParser(_FedInPieces, AioQueryParser):  # type: ignore[misc]
    """Auto Scaling's and STS's. An ASG's instances are parsed into their kept fields
    only (:data:`SHAPE_MEMBERS`: the model's ``Instance`` has no others to read)."""

    _PRUNED: ClassVar[Mapping[str, frozenset[str]]] = {
        "Instances": SHAPE_MEMBERS["autoscaling"]["Instance"]
    }


class _EC2QueryParser(_FedInPieces, AioEC2QueryParser):  # type: ignore[misc]
    """EC2's."""


class LeanParserFactory(AioResponseParserFactory):  # type: ignore[misc]
    """aiobotocore's parsers, with the XML ones feeding their answers in pieces."""

    _PARSERS: Final[dict[str, type[Any]]] = {"query": _QueryParser, "ec2": _EC2QueryParser}

    def create_parser(self, protocol_name: str) -> Any:
        parser = self._PARSERS.get(protocol_name)
        if parser is None:
            return super().create_parser(protocol_name)
        return parser(**self._defaults)


@functools.cache
def aws_session() -> AioSession:
    """The process's AWS session: the standard configuration and credential chain, with the
    :class:`LeanLoader` and the :class:`LeanParserFactory`. One session, so the models load
    once for all clients."""
    session = get_session()
    # The same search path botocore's own loader would get (AWS_DATA_PATH / data_path,
    # ~/.aws/models, botocore's data), read by botocore itself.
    paths = create_loader(session.get_config_variable("data_path")).search_paths
    loader = LeanLoader(extra_search_paths=list(paths), include_default_search_paths=False)
    session.register_component("data_loader", loader)
    session.register_component("response_parser_factory", LeanParserFactory())
    return session
