"""Protobuf text format: parse (fast path + ``text_format`` fallback) and print.

``google.protobuf.text_format.Parse`` is pure Python and needs ~1.3 s for the 2502-node
tensorflow__tfx ``graph.pbtxt``. The fast path here tokenizes the whole text with one regex (the
same token grammar as ``text_format``'s tokenizer) and fills the message directly. It handles
the forms TensorFlow writes; on anything else (extensions, ``Any`` expansion, short list
syntax, hex/octal numbers, duplicates, unknown names, ...) it gives up and the text is parsed
again by ``text_format.Parse``, which either accepts it or raises the error that is reported
with ``file:line:col``. The fast path is a pure optimisation: the test suite checks that both
paths build equal messages for every text graph in the corpus and the fixtures.
"""

from __future__ import annotations

import contextlib
import re
from functools import cache
from typing import Any

from google.protobuf import descriptor as _descriptor
from google.protobuf import text_encoding, text_format

from tfckpt.errors import GraphError

# Nested messages deeper than this fail, like the binary parser's default limit: a text file
# that deep could not be converted to a binary protobuf anyway.
MAX_DEPTH = 100

_TOKEN_RE = re.compile(
    r"""(?:\s|\#[^\n]*)*"""  # whitespace and comments between tokens
    r"""([a-zA-Z_][0-9a-zA-Z_+-]*"""  # identifier
    r"""|(?:[0-9+-]|\.[0-9])[0-9a-zA-Z_.+-]*"""  # number
    r'''|"[^"\n\\]*(?:\\.[^"\n\\]*)*"'''  # double-quoted string (complete)
    r"""|'[^'\n\\]*(?:\\.[^'\n\\]*)*'"""  # single-quoted string (complete)
    r"""|\S)"""  # anything else: one character (punctuation, or junk the parser rejects)
)
_DECIMAL_RE = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_TRUE = frozenset({"true", "t", "1", "True"})
_FALSE = frozenset({"false", "f", "0", "False"})

_FD = _descriptor.FieldDescriptor
_INT_TYPES = frozenset(
    {
        _FD.TYPE_INT32,
        _FD.TYPE_SINT32,
        _FD.TYPE_SFIXED32,
        _FD.TYPE_INT64,
        _FD.TYPE_SINT64,
        _FD.TYPE_SFIXED64,
        _FD.TYPE_UINT32,
        _FD.TYPE_FIXED32,
        _FD.TYPE_UINT64,
        _FD.TYPE_FIXED64,
    }
)
# Field kinds for the fast path.
_MSG, _MAP_MSG, _MAP_SCALAR, _STR, _BYTES, _INT, _FLOAT, _BOOL, _ENUM = range(9)


class _GiveUp(Exception):
    """The fast path met something it does not handle; text_format decides."""


class _Field:
    __slots__ = ("enum", "kind", "name", "oneof", "presence", "repeated")

    def __init__(self, fd: Any) -> None:
        self.name = fd.name
        self.repeated = fd.is_repeated
        self.presence = fd.has_presence
        self.oneof = fd.containing_oneof.name if fd.containing_oneof is not None else None
        self.enum = None
        t = fd.type
        if t == _FD.TYPE_MESSAGE:
            if fd.message_type.GetOptions().map_entry:
                value = fd.message_type.fields_by_name["value"]
                self.kind = _MAP_MSG if value.type == _FD.TYPE_MESSAGE else _MAP_SCALAR
            else:
                self.kind = _MSG
        elif t == _FD.TYPE_STRING:
            self.kind = _STR
        elif t == _FD.TYPE_BYTES:
            self.kind = _BYTES
        elif t in _INT_TYPES:
            self.kind = _INT
        elif t in (_FD.TYPE_FLOAT, _FD.TYPE_DOUBLE):
            self.kind = _FLOAT
        elif t == _FD.TYPE_BOOL:
            self.kind = _BOOL
        elif t == _FD.TYPE_ENUM:
            self.kind = _ENUM
            self.enum = {v.name: v.number for v in fd.enum_type.values}
        else:  # groups and anything newer
            raise _GiveUp


_FIELDS: dict[Any, dict[str, _Field]] = {}


def _fields(desc: Any) -> dict[str, _Field]:
    fields = _FIELDS.get(desc)
    if fields is None:
        fields = {}
        for fd in desc.fields:
            # A field not in the table makes the fast path give up when it is used.
            with contextlib.suppress(_GiveUp):
                fields[fd.name] = _Field(fd)
        _FIELDS[desc] = fields
    return fields


class _FastParser:
    def __init__(self, tokens: list[str]) -> None:
        self.toks = tokens
        self.n = len(tokens)

    def string_bytes(self, i: int) -> tuple[bytes, int]:
        """Adjacent quoted strings concatenate, as in text_format."""
        toks = self.toks
        parts = []
        while i < self.n and toks[i][0] in "\"'":
            tok = toks[i]
            if len(tok) < 2 or tok[-1] != tok[0]:
                raise _GiveUp
            body = tok[1:-1]
            parts.append(text_encoding.CUnescape(body) if "\\" in body else body.encode())
            i += 1
        if not parts:
            raise _GiveUp
        return (parts[0] if len(parts) == 1 else b"".join(parts)), i

    def scalar(self, f: _Field, i: int) -> tuple[Any, int]:
        kind = f.kind
        if kind in (_STR, _BYTES):
            value, i = self.string_bytes(i)
            return (value.decode("utf-8") if kind == _STR else value), i
        tok = self.toks[i]
        if kind == _INT:
            if not _DECIMAL_RE.match(tok):
                raise _GiveUp
            return int(tok), i + 1
        if kind == _ENUM:
            assert f.enum is not None
            number = f.enum.get(tok)
            if number is None:
                raise _GiveUp
            return number, i + 1
        if kind == _FLOAT:
            if tok[0] in "\"'{}<>[]:,;":
                raise _GiveUp
            try:
                return float(tok), i + 1
            except ValueError:
                raise _GiveUp from None
        if kind == _BOOL:
            if tok in _TRUE:
                return True, i + 1
            if tok in _FALSE:
                return False, i + 1
        raise _GiveUp

    def message(self, msg: Any, i: int, end: str, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise _GiveUp
        toks = self.toks
        n = self.n
        fields = _fields(msg.DESCRIPTOR)
        while True:
            if i >= n:
                if end:
                    raise _GiveUp
                return i
            tok = toks[i]
            if tok == end:
                return i + 1
            f = fields.get(tok)
            if f is None:
                raise _GiveUp
            i += 1
            if f.oneof is not None:
                which = msg.WhichOneof(f.oneof)
                if which is not None and which != f.name:
                    raise _GiveUp
            kind = f.kind
            if kind <= _MAP_SCALAR:  # message, or map entry
                if toks[i] == ":":
                    i += 1
                opener = toks[i]
                if opener == "{":
                    close = "}"
                elif opener == "<":
                    close = ">"
                else:
                    raise _GiveUp
                i += 1
                if kind == _MSG:
                    if f.repeated:
                        sub = getattr(msg, f.name).add()
                    else:
                        if msg.HasField(f.name):
                            raise _GiveUp
                        sub = getattr(msg, f.name)
                        sub.SetInParent()
                    i = self.message(sub, i, close, depth + 1)
                else:
                    i = self.map_entry(getattr(msg, f.name), kind, i, close, depth + 1)
            else:
                if toks[i] != ":":
                    raise _GiveUp
                i += 1
                value, i = self.scalar(f, i)
                if f.repeated:
                    getattr(msg, f.name).append(value)
                else:
                    if msg.HasField(f.name) if f.presence else getattr(msg, f.name):
                        raise _GiveUp
                    setattr(msg, f.name, value)
            if i < n and (toks[i] == "," or toks[i] == ";"):
                i += 1

    def map_entry(self, container: Any, kind: int, i: int, close: str, depth: int) -> int:
        toks = self.toks
        if toks[i] != "key" or toks[i + 1] != ":":
            # A default key is not printed (``arg_attr { value { ... } }``), or the value
            # comes first: parse a whole entry, then copy it in, as text_format does.
            entry = container.GetEntryClass()()
            i = self.message(entry, i, close, depth)
            if entry.key in container:
                raise _GiveUp
            if kind == _MAP_MSG:
                container[entry.key].CopyFrom(entry.value)
            else:
                container[entry.key] = entry.value
            return i
        # TensorFlow writes ``key`` first: the value is then parsed in place.
        entry_fields = _fields(container.GetEntryClass().DESCRIPTOR)
        key, i = self.scalar(entry_fields["key"], i + 2)
        if toks[i] == "," or toks[i] == ";":
            i += 1
        if key in container:
            raise _GiveUp  # text_format merges duplicates; keep its semantics
        if toks[i] == close:
            if kind == _MAP_MSG:
                container[key].SetInParent()
            else:
                container[key] = _default_scalar(entry_fields["value"])
            return i + 1
        if toks[i] != "value":
            raise _GiveUp
        i += 1
        if kind == _MAP_MSG:
            if toks[i] == ":":
                i += 1
            opener = toks[i]
            if opener == "{":
                i = self.message(container[key], i + 1, "}", depth + 1)
            elif opener == "<":
                i = self.message(container[key], i + 1, ">", depth + 1)
            else:
                raise _GiveUp
        else:
            if toks[i] != ":":
                raise _GiveUp
            container[key], i = self.scalar(entry_fields["value"], i + 1)
        if toks[i] == "," or toks[i] == ";":
            i += 1
        if toks[i] != close:
            raise _GiveUp
        return i + 1


def _default_scalar(f: _Field) -> Any:
    return {_STR: "", _BYTES: b"", _INT: 0, _FLOAT: 0.0, _BOOL: False, _ENUM: 0}[f.kind]


def _fast_parse(text: str, message: Any) -> bool:
    tokens = _TOKEN_RE.findall(text)
    try:
        _FastParser(tokens).message(message, 0, "", 0)
    except (_GiveUp, IndexError, ValueError, TypeError, UnicodeDecodeError, KeyError):
        return False
    return True


def parse_text(text: str | bytes, message_class: Any, where: str) -> Any:
    """Parse protobuf text into a new ``message_class``; errors name ``where:line:col``."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GraphError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    message = message_class()
    if _fast_parse(text, message):
        return message
    message = message_class()
    try:
        text_format.Parse(
            text, message, max_recursion_depth=MAX_DEPTH, descriptor_pool=_tensorflow_pool()
        )
    except text_format.ParseError as exc:
        line, col = exc.GetLine(), exc.GetColumn()
        detail = str(exc)
        prefix = f"{line}:{col} : " if col is not None else f"{line} : "
        if line is not None and detail.startswith(prefix):
            detail = detail[len(prefix) :]
        loc = where if line is None else f"{where}:{line}" + (f":{col}" if col is not None else "")
        name = message.DESCRIPTOR.name
        raise GraphError(f"{loc}: cannot parse as a text {name}: {detail}") from None
    except RecursionError:
        raise GraphError(f"{where}: nested deeper than Python can parse") from None
    return message


def to_text(message: Any) -> str:
    """Protobuf text as TensorFlow writes it (``tf.io.write_graph(..., as_text=True)``).

    ``Any`` values (asset collections, ...) stay in their plain ``type_url`` / ``value`` form
    whatever else is loaded in the process, so the output is the same with or without
    TensorFlow imported and converts back to exactly the same bytes.
    """
    return text_format.MessageToString(message, descriptor_pool=_empty_pool())


@cache
def _empty_pool() -> Any:
    from google.protobuf import descriptor_pool

    return descriptor_pool.DescriptorPool()


@cache
def _tensorflow_pool() -> Any:
    """TensorFlow's messages under their real package name, for ``Any`` values written in
    expanded form (``[type.googleapis.com/tensorflow.AssetFileDef] { ... }``, as TensorFlow
    prints them). tensorboard ships the compiled protos under the package ``tensorboard``;
    copies renamed back to ``tensorflow`` live in a private pool, so they never clash with
    TensorFlow's own classes."""
    from google.protobuf import descriptor_pb2, descriptor_pool
    from tensorboard.compat.proto import graph_pb2, meta_graph_pb2

    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def rename_fields(messages: Any) -> None:
        for msg in messages:
            for f in list(msg.field) + list(msg.extension):
                if f.type_name.startswith(".tensorboard."):
                    f.type_name = ".tensorflow." + f.type_name[len(".tensorboard.") :]
                if f.extendee.startswith(".tensorboard."):
                    f.extendee = ".tensorflow." + f.extendee[len(".tensorboard.") :]
            rename_fields(msg.nested_type)

    def add(file: Any) -> None:
        if file.name in added:
            return
        for dep in file.dependencies:
            add(dep)
        proto = descriptor_pb2.FileDescriptorProto.FromString(file.serialized_pb)
        if proto.package == "tensorboard":
            proto.package = "tensorflow"
        rename_fields(proto.message_type)
        pool.Add(proto)
        added.add(file.name)

    for module in (graph_pb2, meta_graph_pb2):
        add(module.DESCRIPTOR)
    return pool
