"""YAML read as untrusted data: the guards a catalog edited by many hands needs.

``load(text)`` is ``yaml.safe_load`` plus refusals, each a :class:`YamlError` with the line:
nesting deeper than :data:`MAX_DEPTH`, aliases (``*name``: the "billion laughs" bomb
and shared mutable values), merge keys (``<<``) and duplicate keys (YAML keeps the last
one silently). libyaml's parser is used when PyYAML has it, but composition runs in
Python: libyaml's own composer recurses in C and crashes the interpreter on input nested
some ten thousand levels deep, which a few hundred kilobytes of ``[`` can be.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

MAX_DEPTH = 32  # a data catalog needs about 6 levels; far deeper input is an attack or a slip


class YamlError(ValueError):
    """Invalid or refused YAML; ``line`` is 1-based, or None when unknown."""

    def __init__(self, problem: str, line: int | None) -> None:
        super().__init__(problem if line is None else f"{problem} (line {line})")
        self.problem = problem
        self.line = line


def _loader_class() -> type[Any]:
    import yaml
    from yaml.composer import Composer, ComposerError
    from yaml.constructor import ConstructorError, SafeConstructor
    from yaml.events import AliasEvent
    from yaml.nodes import MappingNode
    from yaml.resolver import Resolver

    try:
        from yaml._yaml import CParser

        parsers: tuple[type[Any], ...] = (CParser,)
    except ImportError:  # pragma: no cover - PyYAML built without libyaml
        parsers = (yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser)

    # mypy cannot check bases unpacked from a tuple chosen at run time.
    class GuardedLoader(Composer, *parsers, SafeConstructor, Resolver):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            if len(parsers) == 1:
                parsers[0].__init__(self, stream)
            else:  # pragma: no cover
                yaml.reader.Reader.__init__(self, stream)
                yaml.scanner.Scanner.__init__(self)
                yaml.parser.Parser.__init__(self)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self.depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(AliasEvent):
                mark = self.peek_event().start_mark
                raise ComposerError(None, None, "aliases (*name) are not allowed here", mark)
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    mark = self.peek_event().start_mark
                    raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            if not isinstance(node, MappingNode):
                raise ConstructorError(None, None, "expected a mapping", node.start_mark)
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise ConstructorError(
                        None, None, "merge keys (<<) are not allowed here", key_node.start_mark
                    )
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, Hashable):
                    raise ConstructorError(None, None, "unhashable key", key_node.start_mark)
                if key in mapping:
                    raise ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                mapping[key] = self.construct_object(value_node, deep=deep)
            return mapping

    return GuardedLoader


_LOADER: type[Any] | None = None


def load(text: str) -> Any:
    """Parse ``text`` like ``yaml.safe_load``, with the refusals of the module docstring.

    Raises:
        YamlError: invalid YAML, or a refused construct, with its line.
    """
    import yaml

    global _LOADER
    if _LOADER is None:
        _LOADER = _loader_class()
    loader = _LOADER(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise YamlError(str(problem), mark.line + 1 if mark is not None else None) from None
    except RecursionError:  # belt and braces: MAX_DEPTH keeps the stack far from the limit
        raise YamlError("nested too deeply", None) from None
    finally:
        loader.dispose()
