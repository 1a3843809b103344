"""Dotted keys ("mining.num_negatives") are how YAML blocks, CLI overrides, the studio's form and the API name a
setting; these helpers are the only code that walks them in a nested config. The schema's own keys are
`core.config.keys()`."""

from __future__ import annotations

from typing import Any


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as {dotted key: value}."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


def nest(items: dict[str, Any]) -> dict[str, Any]:
    """{key or dotted key: value} -> a nested config (later keys win, blocks merge)."""
    out: dict[str, Any] = {}
    for key, value in items.items():
        out = set_key(out, str(key), value)
    return out


def blocked(config: dict[str, Any], key: str) -> bool:
    """Whether a part of dotted `key` above its last one already holds a value that is not a block."""
    node: Any = config
    for part in key.split(".")[:-1]:
        node = node.get(part)
        if node is None:
            return False
        if not isinstance(node, dict):
            return True
    return False


def get_key(config: dict[str, Any], key: str) -> Any:
    """The value at dotted `key` (e.g. "mining.num_negatives"), None when any part is missing."""
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def set_key(config: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of `config` with dotted `key` set (nested blocks copied, never shared with the input)."""
    out = dict(config)
    head, _, rest = key.partition(".")
    out[head] = set_key(dict(out.get(head) or {}), rest, value) if rest else value
    return out


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` updated by `extra`, nested sections merged key by key (the later value wins)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
