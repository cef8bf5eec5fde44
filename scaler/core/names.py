"""Kubernetes identifiers, checked exactly as the API server checks them.

apimachinery's ``pkg/util/validation``: ``IsDNS1123Label``, ``IsDNS1123Subdomain``,
``IsQualifiedName`` (label and annotation keys, taint keys) and ``IsValidLabelValue``. Go's
regexps there are anchored with ``^...$``, which in Go match the whole string; Python's ``$``
also matches before a trailing newline, so every check here is a ``fullmatch`` (a label value
``"gpu\\n"`` would otherwise pass, and the API server would then refuse the node or the patch
scaler writes).
"""

from __future__ import annotations

import re
from typing import Final

DNS1123_LABEL_MAX: Final = 63
DNS1123_SUBDOMAIN_MAX: Final = 253
QUALIFIED_NAME_MAX: Final = 63
LABEL_VALUE_MAX: Final = 63

_DNS1123_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_QUALIFIED_NAME: Final = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def is_dns1123_label(text: object) -> bool:
    """A namespace name: lower-case alphanumerics and ``-``, at most 63, alphanumeric ends."""
    return (
        isinstance(text, str)
        and len(text) <= DNS1123_LABEL_MAX
        and _DNS1123_LABEL.fullmatch(text) is not None
    )


def is_dns1123_subdomain(text: object) -> bool:
    """A pod or node name, a label key's prefix: dot-separated DNS-1123 labels, <= 253."""
    return (
        isinstance(text, str)
        and len(text) <= DNS1123_SUBDOMAIN_MAX
        and _DNS1123_SUBDOMAIN.fullmatch(text) is not None
    )


def is_qualified_name(text: object) -> bool:
    """A label key, annotation key or taint key: ``[prefix/]name``, the prefix a DNS-1123
    subdomain, the name <= 63 alphanumerics, ``-``, ``_``, ``.`` with alphanumeric ends."""
    if not isinstance(text, str):
        return False
    parts = text.split("/")
    if len(parts) == 2:
        prefix, name = parts
        if not prefix or not is_dns1123_subdomain(prefix):
            return False
    elif len(parts) == 1:
        name = parts[0]
    else:
        return False
    return (
        0 < len(name) <= QUALIFIED_NAME_MAX and _QUALIFIED_NAME.fullmatch(name) is not None
    )


def is_label_value(text: object) -> bool:
    """A label value (also a taint value): empty, or <= 63 characters as a qualified name."""
    return isinstance(text, str) and (
        text == ""
        or (len(text) <= LABEL_VALUE_MAX and _QUALIFIED_NAME.fullmatch(text) is not None)
    )


def shown(name: str) -> str:
    """A name as an error shows it: as is, or quoted when it holds a newline or another
    unprintable character (an error is one line)."""
    return name if name.isprintable() else repr(name)


__all__ = ["is_dns1123_label", "is_dns1123_subdomain", "is_label_value", "is_qualified_name", "shown"]
