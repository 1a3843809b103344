"""Config text from outside: YAML from a file, the editor or a stranger (size-, depth- and alias-checked before it is
parsed) and `key=value` overrides, each problem a ConfigError line naming where it is."""

from __future__ import annotations

from typing import Any

import yaml

from core.config.keys import blocked, merged, set_key

MAX_YAML_BYTES = 64 * 1024  # a config is a few hundred bytes; this bounds parsing work on untrusted text
MAX_YAML_DEPTH = 32  # a config nests three levels


class ConfigError(ValueError):
    """A config that cannot be used. `errors` holds one readable line per problem."""

    def __init__(self, errors: list[str], source: str | None = None):
        self.errors = errors
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(f"Invalid config{where}:\n" + "\n".join(f"  - {e}" for e in errors))


def short_value(value: Any, limit: int = 80) -> str:
    """A value as it appears in an error message: cut, so a huge input cannot flood a log or a page."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


NULLS = {"", "~", "null", "Null", "NULL"}


class _KeyError(Exception):
    pass


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader for configs: keys must be names (`1: 2` is refused), and a key given again wins as the guide's
    combined blocks expect, except that a section given twice (two `mining:` blocks) is merged key by key instead of
    the second silently dropping what the first set."""

    def construct_mapping(self, node, deep=False):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise _KeyError(f"line {key_node.start_mark.line + 1}: key {key!r} is not a setting name")
            value = self.construct_object(value_node, deep=True)  # deep: a nested mapping is complete to merge
            out = merged(out, {key: value})
        return out


def safe_yaml(text: str, source: str) -> Any:
    """Parse untrusted YAML text: at most MAX_YAML_BYTES and no anchors/aliases, both refused before anything is
    expanded (nested aliases make a few hundred bytes expand into billions of nodes). Raises ConfigError."""
    if len(text.encode("utf-8", errors="replace")) > MAX_YAML_BYTES:
        raise ConfigError([f"YAML text is over {MAX_YAML_BYTES // 1024} KB; a config is a few hundred bytes"], source)
    opens = (
        yaml.FlowSequenceStartToken,
        yaml.FlowMappingStartToken,
        yaml.BlockSequenceStartToken,
        yaml.BlockMappingStartToken,
    )
    closes = (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)
    depth = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):  # tokens only: linear, nothing is built yet
            line = token.start_mark.line + 1
            if isinstance(token, (yaml.AnchorToken, yaml.AliasToken)):
                raise ConfigError(
                    [f"line {line}: YAML anchors and aliases (&, *) are not accepted; write the values out"], source
                )
            depth += isinstance(token, opens) - isinstance(token, closes)
            if depth > MAX_YAML_DEPTH:  # the parser recurses per level: refuse before it does
                raise ConfigError([f"line {line}: nested more than {MAX_YAML_DEPTH} levels deep"], source)
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except _KeyError as exc:
        raise ConfigError([str(exc)], source) from None
    except RecursionError:
        raise ConfigError(["YAML text is nested too deeply to be a config"], source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError([f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"], source) from None


def _parse_value(raw: str) -> Any:
    """`key=value` text -> a Python value, read as YAML so `5`, `1e-5`, `true`, `null`, `[64, 128]` all work."""
    try:
        value = safe_yaml(raw, "overrides") if raw.strip() else None
    except ConfigError:
        return raw
    if value is None and raw.strip() not in NULLS:  # `#Q: ` is a text, not a YAML comment that leaves nothing
        return raw
    # `prompts.query=query: ` means the text, not a mapping; a mapping is written {key: value}.
    return raw if isinstance(value, dict) and not raw.lstrip().startswith("{") else value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["num_epochs=3", "mining.num_negatives=5"]` -> a nested dict. Raises ConfigError on malformed items."""
    out: dict[str, Any] = {}
    errors = []
    for item in items:
        if "=" not in item:
            errors.append(f"override '{item}' is not key=value")
            continue
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part.strip() for part in key.split(".")):
            errors.append(f"override '{item}' has an empty key name")
        elif blocked(out, key):
            errors.append(f"override '{item}' conflicts with another override")
        else:
            out = set_key(out, key, _parse_value(raw))
    if errors:
        raise ConfigError(errors, "overrides")
    return out


def yaml_value(value: Any) -> str:
    """A value as one line of YAML, the way `key=value` overrides are read back."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
