"""YAML read the way kubectl and the API server read it, within :class:`Limits`, and
written so that they read it back unchanged (:func:`dump`).

Kubernetes converts YAML to JSON with ``sigs.k8s.io/yaml`` (go-yaml v2's resolver, then
``encoding/json``); PyYAML's default resolver is YAML 1.1 and differs on plain scalars.
What the real API server stores (``tests/control_plane/test_yaml_reading.py`` checks it):

* ``1:30:00`` is a string (no YAML 1.1 sexagesimal), ``2001-12-14`` a string (no dates);
* ``1e-4``, ``1E3``, ``.5``, ``1.`` are numbers (PyYAML wants a dot and a signed exponent);
* ``017`` and ``0o17`` are 15, ``0x1F`` 31, ``0b101`` 5, ``1_000`` 1000 (Go's integer syntax);
* ``yes/no/on/off/y/n`` (any of their three casings) are booleans, as in YAML 1.1: go-yaml
  v2 keeps them, so ``enabled: yes`` reaches the server as ``true``;
* a key ``y:`` or ``on:`` becomes the string ``"true"``, a key ``1:`` the string ``"1"``;
* after the JSON round trip a whole float is an integer (``2.0`` is stored as ``2``) and a
  number outside int64 a float; ``.nan`` and ``.inf`` cannot be sent at all.

The stream is parsed by libyaml (C) and composed here without recursion, counting levels
and values as it goes, so a 500-level document or an alias bomb is refused with its line
before any Python object is built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import yaml
from yaml import events
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tunix_rt.reading.limits import Limits, ReadError, clip, size_text

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
MERGE = "tag:yaml.org,2002:merge"
TIMESTAMP = "tag:yaml.org,2002:timestamp"
BINARY = "tag:yaml.org,2002:binary"
SEQ = "tag:yaml.org,2002:seq"
MAP = "tag:yaml.org,2002:map"
KNOWN_SCALAR_TAGS = {STR, INT, FLOAT, BOOL, NULL, TIMESTAMP, BINARY}

_WORDS: dict[str, tuple[str, Any]] = {}
for _tag, _value, _spellings in (
    (BOOL, True, "y Y yes Yes YES true True TRUE on On ON"),
    (BOOL, False, "n N no No NO false False FALSE off Off OFF"),
    (NULL, None, "~ null Null NULL"),
    (FLOAT, math.nan, ".nan .NaN .NAN"),
    (FLOAT, math.inf, ".inf .Inf .INF +.inf +.Inf +.INF"),
    (FLOAT, -math.inf, "-.inf -.Inf -.INF"),
):
    for _spelling in _spellings.split():
        _WORDS[_spelling] = (_tag, _value)
_WORDS[""] = (NULL, None)
_WORDS["<<"] = (MERGE, "<<")

_GO_INT = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_INT64 = 2**63


def _go_int(plain: str) -> int | None:
    """``strconv.ParseInt(plain, 0, 64)`` then ``ParseUint``: Go's integer literals."""
    match = _GO_INT.fullmatch(plain)
    if match is None:
        return None
    sign, body = match.groups()
    prefix = body[:2].lower()
    bases = {"0x": 16, "0b": 2, "0o": 8}
    if prefix in bases:
        value = int(body[2:], bases[prefix])
    elif body.startswith("0") and len(body) > 1:
        value = int(body[1:], 8)
    else:
        value = int(body)
    value = -value if sign == "-" else value
    if -_INT64 <= value < _INT64 or (not sign and value < 2**64):
        return value
    return None


def _json_number(value: int | float) -> int | float:
    """The number the API server stores after the JSON round trip: a whole float inside
    int64 becomes an int (``2.0`` -> ``2``), an int outside it a float."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value) if -_INT64 <= value < _INT64 else value
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        return float(value)
    return value


def go_scalar(text: str) -> tuple[str, Any]:
    """(tag, value) of a plain scalar, as go-yaml v2's ``resolve`` reads it."""
    if text in _WORDS:
        return _WORDS[text]
    head = text[0]
    if head == ".":
        if _DOT_FLOAT.fullmatch(text):
            return FLOAT, _json_number(float(text))
    elif head in "+-0123456789":
        plain = text.replace("_", "")
        whole = _go_int(plain)
        if whole is not None:
            number = _json_number(whole)
            return (INT if isinstance(number, int) else FLOAT), number
        if _GO_FLOAT.fullmatch(plain):
            value = float(plain)
            if math.isfinite(value):  # Go's ParseFloat refuses an overflow: a string
                number = _json_number(value)
                return (INT if isinstance(number, int) else FLOAT), number
    return STR, text


class KubeConstructor(yaml.constructor.SafeConstructor):
    """Values as :func:`go_scalar` reads them; keys as the JSON object keys kubectl sends
    (``true``, ``"1"``); a key given twice in one mapping refused (YAML keeps the last,
    silently dropping what was written first)."""

    def _scalar(self, node: ScalarNode, wanted: str) -> Any:
        tag, value = go_scalar(str(node.value))
        if tag == wanted or (wanted == FLOAT and tag == INT):
            return value
        raise yaml.constructor.ConstructorError(
            None, None, f"cannot read {clip(str(node.value))} as {wanted[18:]}", node.start_mark
        )

    def construct_kube_int(self, node: ScalarNode) -> Any:
        return self._scalar(node, INT)

    def construct_kube_float(self, node: ScalarNode) -> Any:
        return self._scalar(node, FLOAT)

    def construct_kube_bool(self, node: ScalarNode) -> Any:
        return self._scalar(node, BOOL)

    def construct_kube_timestamp(self, node: ScalarNode) -> Any:
        return str(node.value)  # go-yaml keeps a timestamp as its text

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE:
                continue
            key = self._key(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {seen[key]}); keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        self.flatten_mapping(node)
        return {self._key(k): self.construct_object(v, deep=deep) for k, v in node.value}

    def _key(self, node: Node) -> str:
        key = self.construct_object(node, deep=True)
        if isinstance(key, bool):
            return "true" if key else "false"
        if isinstance(key, str | int) and not isinstance(key, bool):
            return str(key)
        shown = "null" if key is None else clip(str(key))
        raise yaml.constructor.ConstructorError(
            None, None, f"a key must be a string, not {shown}; quote it", node.start_mark
        )


KubeConstructor.yaml_constructors = {
    **yaml.constructor.SafeConstructor.yaml_constructors,
    INT: KubeConstructor.construct_kube_int,
    FLOAT: KubeConstructor.construct_kube_float,
    BOOL: KubeConstructor.construct_kube_bool,
    TIMESTAMP: KubeConstructor.construct_kube_timestamp,
}


def _parser(text: str) -> Any:
    """libyaml's event parser where PyYAML has it (fast, and no Python recursion)."""
    try:
        from yaml._yaml import CParser
    except ImportError:  # PyYAML built without libyaml: the same events, slower
        return yaml.SafeLoader(text)
    return CParser(text)


def _line(event: events.Event) -> str:
    mark = getattr(event, "start_mark", None)
    return f"line {mark.line + 1}: " if mark is not None else ""


class _Composer:
    """Events to nodes, iteratively: every level and every value counted."""

    def __init__(self, source: str, limits: Limits) -> None:
        self.source = source
        self.limits = limits

    def documents(self, text: str) -> Iterator[Node]:
        parser = _parser(text)
        try:
            while True:
                event = parser.get_event()
                if event is None or isinstance(event, events.StreamEndEvent):
                    return
                if isinstance(event, events.DocumentStartEvent):
                    yield self._document(parser)
        finally:
            dispose = getattr(parser, "dispose", None)
            if dispose is not None:
                dispose()

    def _refuse(self, event: events.Event, problem: str) -> ReadError:
        return ReadError(self.source, f"{_line(event)}{problem}")

    def _document(self, parser: Any) -> Node:
        anchors: dict[str, Node] = {}
        stack: list[list[Any]] = []  # [collection node, pending mapping key or None]
        root: Node | None = None
        count = 0
        while True:
            event = parser.get_event()
            if isinstance(event, events.DocumentEndEvent):
                return root if root is not None else ScalarNode(NULL, "")
            if isinstance(event, events.SequenceEndEvent | events.MappingEndEvent):
                stack.pop()
                continue
            count += 1
            if count > self.limits.max_nodes:
                raise self._refuse(
                    event,
                    f"more than {self.limits.max_nodes} values; a {self.limits.what} "
                    "is a few hundred",
                )
            node = self._node(event, anchors)
            if root is None:
                root = node
            else:
                self._attach(stack[-1], node)
            if isinstance(node, SequenceNode | MappingNode) and not isinstance(
                event, events.AliasEvent
            ):
                if len(stack) >= self.limits.max_depth:
                    raise self._refuse(event, f"nested deeper than {self.limits.max_depth} levels")
                stack.append([node, None])

    @staticmethod
    def _attach(frame: list[Any], node: Node) -> None:
        parent = frame[0]
        if isinstance(parent, SequenceNode):
            parent.value.append(node)
        elif frame[1] is None:
            frame[1] = node
        else:
            parent.value.append((frame[1], node))
            frame[1] = None

    def _node(self, event: events.Event, anchors: dict[str, Node]) -> Node:
        if isinstance(event, events.AliasEvent):
            if event.anchor not in anchors:
                raise self._refuse(event, f"alias *{event.anchor} names no anchor above it")
            return anchors[event.anchor]
        node: Node
        start: Any = event.start_mark  # libyaml's Mark or PyYAML's: both have .line
        if isinstance(event, events.ScalarEvent):
            tag = event.tag
            if tag in (None, "!") or tag not in KNOWN_SCALAR_TAGS:
                plain = tag in (None, "!") and event.implicit[0]
                tag = go_scalar(event.value)[0] if plain else STR
            if tag == BINARY:
                raise self._refuse(event, "!!binary is not read here; write the value as text")
            node = ScalarNode(tag, event.value, start, None, event.style)
        elif isinstance(event, events.SequenceStartEvent):
            node = SequenceNode(SEQ, [], start, None, event.flow_style)
        elif isinstance(event, events.MappingStartEvent):
            node = MappingNode(MAP, [], start, None, event.flow_style)
        else:  # pragma: no cover - libyaml emits nothing else inside a document
            raise self._refuse(event, f"unexpected {type(event).__name__}")
        if event.anchor is not None:
            anchors[event.anchor] = node
        return node


def _children(node: Node, path: str) -> list[tuple[Node, str]]:
    if isinstance(node, SequenceNode):
        return [(child, f"{path}[{i}]") for i, child in enumerate(node.value)]
    if isinstance(node, MappingNode):
        out: list[tuple[Node, str]] = []
        for key, value in node.value:
            name = str(key.value) if isinstance(key, ScalarNode) else "?"
            out += [(key, path), (value, f"{path}.{name}" if path else name)]
        return out
    return []


def measure(root: Node, source: str, limits: Limits) -> None:
    """Refuse a document whose aliases expand past the limits (values, levels, JSON size),
    that contains itself, or that holds a number JSON cannot carry; the path named is the
    smallest part over the limit. Linear in the distinct nodes: an alias is measured once."""
    size: dict[int, tuple[int, int, int]] = {}  # id -> (values, json bytes, depth)
    open_: set[int] = set()
    stack: list[tuple[Node, str, bool]] = [(root, "", False)]
    while stack:
        node, path, done = stack.pop()
        key = id(node)
        where = path or "(top level)"
        if done:
            kids = [size[id(child)] for child, _ in _children(node, path)]
            own = len(node.value) + 2 if isinstance(node, ScalarNode) else 2 + len(kids)
            total = (
                1 + sum(k[0] for k in kids),
                own + sum(k[1] for k in kids),
                (1 if kids else 0) + max((k[2] for k in kids), default=0),
            )
            size[key] = total
            open_.discard(key)
            _check_measure(where, total, source, limits)
            continue
        if key in size:
            continue
        if key in open_:
            raise ReadError(source, "an alias here names a node that contains it", where)
        if isinstance(node, ScalarNode) and node.tag == FLOAT:
            value = go_scalar(str(node.value))[1]
            if isinstance(value, float) and not math.isfinite(value):
                raise ReadError(
                    source,
                    f"{node.value} cannot be sent to Kubernetes (JSON has no NaN or "
                    "Infinity); write a finite number",
                    where,
                )
        open_.add(key)
        stack.append((node, path, True))
        stack += [(child, child_path, False) for child, child_path in _children(node, path)]


def _check_measure(where: str, total: tuple[int, int, int], source: str, limits: Limits) -> None:
    values, json_bytes, depth = total
    if depth > limits.max_depth:
        raise ReadError(source, f"nested deeper than {limits.max_depth} levels", where)
    if values > limits.max_nodes:
        raise ReadError(
            source,
            f"expands to {values} values with its aliases (over {limits.max_nodes}); "
            "write the values out, or fewer",
            where,
        )
    if json_bytes > limits.max_json_bytes:
        raise ReadError(
            source,
            f"expands to about {size_text(json_bytes)} of JSON with its aliases, "
            f"over the {size_text(limits.max_json_bytes)} a {limits.what} may be",
            where,
        )


def load_all(text: str, source: str, limits: Limits) -> list[Any]:
    """Every document of ``text`` as kubectl would send it (empty ones as None)."""
    out: list[Any] = []
    try:
        for node in _Composer(source, limits).documents(text):
            measure(node, source, limits)
            out.append(KubeConstructor().construct_document(node))
    except yaml.YAMLError as exc:
        raise ReadError(source, f"not valid YAML: {_problem(exc)}") from None
    return out


def _problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}{problem}"


def scalar(text: str) -> Any:
    """One plain scalar as kubectl reads it (``--set KEY=VALUE``): ``1e-3`` a number,
    ``yes`` true, ``1:30`` a string."""
    return go_scalar(text)[1] if text.strip() == text else text


class KubeDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting every string kubectl would read as something else.

    PyYAML quotes what its own YAML 1.1 resolver would misread, not what go-yaml v2
    misreads: a Ray Tune trial id such as ``1234e_00001`` is written plain and comes back
    from kubectl as the number 12340, and ``y`` as true."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        node = super().represent_str(data)
        if node.style is None and go_scalar(data)[0] != STR:
            node.style = "'"
        return node


KubeDumper.add_representer(str, KubeDumper.represent_str)


def dump(data: Any, **options: Any) -> str:
    """YAML that kubectl, the API server and :func:`load_all` read back as ``data``."""
    text: str = yaml.dump(data, Dumper=KubeDumper, **options)
    return text
