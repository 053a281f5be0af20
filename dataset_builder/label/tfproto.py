"""Read TensorFlow 1 checkpoints and write frozen graphs without TensorFlow.

essentia runs frozen TensorFlow graphs (``.pb`` GraphDef files). The musicnn taggers ship as TF1 checkpoints
(a ``.meta`` MetaGraphDef, an ``.index`` tensor-bundle table and a ``.data-*`` shard). Installing TensorFlow to
convert them would add ~2 GB for one conversion, so this module reads and writes the few protocol-buffer messages
involved itself:

- the message classes (GraphDef, NodeDef, AttrValue, TensorProto, ...) are declared here field by field with
  ``google.protobuf``'s descriptor API; fields not declared are kept as unknown fields, so parsing and
  re-serialising a graph loses nothing;
- the ``.index`` file is a LevelDB-format table (blocks of prefix-compressed keys, a footer with block handles)
  mapping each variable name to a BundleEntryProto (dtype, shape, offset and size in the data shard).

Field numbers follow tensorflow/core/framework/*.proto and tensorflow/core/protobuf/{meta_graph,tensor_bundle}.proto.
"""

from __future__ import annotations

import glob
import os
import struct
import typing as tp
from pathlib import Path

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "genrecraft_tf"

# TensorFlow DataType enum values -> numpy dtypes (the ones checkpoints of these models hold).
DT_FLOAT, DT_INT32, DT_BOOL, DT_INT64 = 1, 3, 10, 9
NUMPY_DTYPES = {DT_FLOAT: np.float32, 2: np.float64, DT_INT32: np.int32, DT_INT64: np.int64, DT_BOOL: np.bool_}


def _field(name, number, ftype, label=_F.LABEL_OPTIONAL, type_name=None, packed=None):
    field = _F(name=name, number=number, type=ftype, label=label)
    if type_name:
        field.type_name = f".{_PACKAGE}.{type_name}"
    if packed is not None:
        field.options.packed = packed
    return field


def _build_messages() -> tp.Dict[str, type]:
    rep = _F.LABEL_REPEATED
    msg, i64, i32, s, b, f, byts, boolean, u32 = (_F.TYPE_MESSAGE, _F.TYPE_INT64, _F.TYPE_INT32, _F.TYPE_STRING,
                                                  _F.TYPE_BYTES, _F.TYPE_FLOAT, _F.TYPE_BYTES, _F.TYPE_BOOL,
                                                  _F.TYPE_FIXED32)
    specs = {
        "TensorShapeProto.Dim": [("size", 1, i64), ("name", 2, s)],
        "TensorShapeProto": [("dim", 2, msg, rep, "TensorShapeProto.Dim"), ("unknown_rank", 3, boolean)],
        "TensorProto": [("dtype", 1, i32), ("tensor_shape", 2, msg, None, "TensorShapeProto"),
                        ("version_number", 3, i32), ("tensor_content", 4, byts),
                        ("float_val", 5, f, rep, None, True), ("int_val", 7, i32, rep, None, True),
                        ("bool_val", 11, boolean, rep, None, True), ("int64_val", 10, i64, rep, None, True)],
        "AttrValue.ListValue": [("s", 2, byts, rep), ("i", 3, i64, rep, None, True), ("f", 4, f, rep, None, True),
                                ("b", 5, boolean, rep, None, True), ("type", 6, i32, rep, None, True),
                                ("shape", 7, msg, rep, "TensorShapeProto"), ("tensor", 8, msg, rep, "TensorProto")],
        "AttrValue": [("list", 1, msg, None, "AttrValue.ListValue"), ("s", 2, byts), ("i", 3, i64), ("f", 4, f),
                      ("b", 5, boolean), ("type", 6, i32), ("shape", 7, msg, None, "TensorShapeProto"),
                      ("tensor", 8, msg, None, "TensorProto"), ("placeholder", 9, s)],
        "NodeDef.AttrEntry": [("key", 1, s), ("value", 2, msg, None, "AttrValue")],
        "NodeDef": [("name", 1, s), ("op", 2, s), ("input", 3, s, rep), ("device", 4, s),
                    ("attr", 5, msg, rep, "NodeDef.AttrEntry")],
        "VersionDef": [("producer", 1, i32), ("min_consumer", 2, i32), ("bad_consumers", 3, i32, rep, None, True)],
        "GraphDef": [("node", 1, msg, rep, "NodeDef"), ("versions", 4, msg, None, "VersionDef")],
        "MetaGraphDef": [("graph_def", 2, msg, None, "GraphDef")],
        "BundleEntryProto": [("dtype", 1, i32), ("shape", 2, msg, None, "TensorShapeProto"), ("shard_id", 3, i32),
                             ("offset", 4, i64), ("size", 5, i64), ("crc32c", 6, u32)],
    }
    del b
    file_proto = descriptor_pb2.FileDescriptorProto(name=f"{_PACKAGE}.proto", package=_PACKAGE, syntax="proto3")
    messages: tp.Dict[str, descriptor_pb2.DescriptorProto] = {}
    for full_name in sorted(specs, key=lambda n: n.count(".")):  # parents before nested types
        parent, _, name = full_name.rpartition(".")
        container = messages[parent].nested_type if parent else file_proto.message_type
        messages[full_name] = container.add(name=name)
    messages["NodeDef.AttrEntry"].options.map_entry = True
    # AttrValue's fields form `oneof value` in TensorFlow: without it proto3 would drop b=false, i=0, f=0.0.
    messages["AttrValue"].oneof_decl.add(name="value")
    for full_name, fields in specs.items():
        for spec in fields:
            name, number, ftype = spec[:3]
            label = spec[3] if len(spec) > 3 and spec[3] else _F.LABEL_OPTIONAL
            type_name = spec[4] if len(spec) > 4 else None
            packed = spec[5] if len(spec) > 5 else None
            field = _field(name, number, ftype, label, type_name, packed)
            if full_name == "AttrValue":
                field.oneof_index = 0
            messages[full_name].field.append(field)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name in specs}


_MESSAGES = _build_messages()
GraphDef = _MESSAGES["GraphDef"]
NodeDef = _MESSAGES["NodeDef"]
AttrValue = _MESSAGES["AttrValue"]
TensorProto = _MESSAGES["TensorProto"]
MetaGraphDef = _MESSAGES["MetaGraphDef"]
BundleEntryProto = _MESSAGES["BundleEntryProto"]


def tensor_proto(array: np.ndarray) -> tp.Any:
    """A TensorProto holding ``array`` (float32, int32, int64 or bool)."""
    inverse = {np.dtype(v): k for k, v in NUMPY_DTYPES.items()}
    array = np.asarray(array).copy(order="C")  # (ascontiguousarray would turn a scalar into shape [1])
    proto = TensorProto(dtype=inverse[array.dtype], tensor_content=array.tobytes())
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


def tensor_value(proto: tp.Any) -> np.ndarray:
    """The numpy value of a TensorProto (content or repeated-value form)."""
    dtype = NUMPY_DTYPES[proto.dtype]
    shape = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    values = {np.float32: proto.float_val, np.int32: proto.int_val, np.int64: proto.int64_val,
              np.bool_: proto.bool_val}[dtype]
    array = np.array(list(values), dtype=dtype)
    if array.size == 1 and int(np.prod(shape)) > 1:
        array = np.full(shape, array[0], dtype=dtype)
    return array.reshape(shape)


def const_node(name: str, array: np.ndarray) -> tp.Any:
    """A ``Const`` NodeDef named ``name`` with value ``array``."""
    node = NodeDef(name=name, op="Const")
    value = tensor_proto(np.asarray(array))
    node.attr["dtype"].type = value.dtype
    node.attr["value"].tensor.CopyFrom(value)
    return node


# ---- tensor bundle (.index: LevelDB table; .data-*: raw bytes) -------------------------------------------------

_TABLE_MAGIC = 0xDB4775248B80FB57


def _varint(buf: bytes, pos: int) -> tp.Tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _block_entries(data: bytes, offset: int, size: int) -> tp.Iterator[tp.Tuple[bytes, bytes]]:
    block = data[offset:offset + size]
    if data[offset + size] != 0:
        raise ValueError("compressed tensor-bundle index blocks are not supported (expected uncompressed)")
    num_restarts = struct.unpack("<I", block[-4:])[0]
    end = len(block) - 4 * (num_restarts + 1)
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        yield key, block[pos:pos + value_len]
        pos += value_len


def read_checkpoint(prefix: tp.Union[str, Path]) -> tp.Dict[str, np.ndarray]:
    """All tensors of a TF1 checkpoint ``prefix`` (``prefix.index`` + ``prefix.data-00000-of-00001``)."""
    prefix = str(prefix)
    index = Path(prefix + ".index").read_bytes()
    if struct.unpack("<Q", index[-8:])[0] != _TABLE_MAGIC:
        raise ValueError(f"{prefix}.index is not a TensorFlow tensor-bundle index")
    footer = index[-48:]
    _, pos = _varint(footer, 0)  # metaindex handle: offset
    _, pos = _varint(footer, pos)  # metaindex handle: size
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    shards: tp.Dict[int, bytes] = {}
    tensors: tp.Dict[str, np.ndarray] = {}
    for _, handle in _block_entries(index, index_offset, index_size):
        block_offset, hpos = _varint(handle, 0)
        block_size, _ = _varint(handle, hpos)
        for key, value in _block_entries(index, block_offset, block_size):
            if not key:
                continue  # the bundle header
            entry = BundleEntryProto.FromString(value)
            if entry.shard_id not in shards:
                folder, stem = os.path.split(prefix)  # musicnn's prefix is a folder: files ".index", ".data-*"
                shard_files = sorted(Path(folder or ".").glob(glob.escape(stem) + f".data-{entry.shard_id:05d}-of-*"))
                if not shard_files:
                    raise FileNotFoundError(f"missing data shard {entry.shard_id} for checkpoint {prefix}")
                shards[entry.shard_id] = shard_files[0].read_bytes()
            raw = shards[entry.shard_id][entry.offset:entry.offset + entry.size]
            shape = [d.size for d in entry.shape.dim]
            tensors[key.decode()] = np.frombuffer(raw, dtype=NUMPY_DTYPES[entry.dtype]).reshape(shape).copy()
    return tensors


def _clean_input(name: str) -> str:
    return name.lstrip("^").split(":")[0]


def freeze(graph: tp.Any, variables: tp.Mapping[str, np.ndarray], outputs: tp.Sequence[str],
           constants: tp.Mapping[str, np.ndarray] = ()) -> tp.Any:
    """A frozen GraphDef with only what ``outputs`` need: variables become constants, the nodes named in
    ``constants`` (e.g. an ``is_training`` placeholder) become constants with the given value, control
    dependencies are dropped."""
    nodes = {node.name: node for node in graph.node}
    missing = [o for o in outputs if _clean_input(o) not in nodes]
    if missing:
        raise ValueError(f"graph has no node {missing}")
    keep: tp.List[str] = []
    seen: tp.Set[str] = set()
    stack = [_clean_input(o) for o in outputs]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        keep.append(name)
        if name in constants or nodes[name].op in ("VariableV2", "Variable"):
            continue
        stack += [_clean_input(i) for i in nodes[name].input if not i.startswith("^")]
    frozen = GraphDef()
    frozen.versions.CopyFrom(graph.versions)
    order = {node.name: i for i, node in enumerate(graph.node)}
    for name in sorted(keep, key=order.__getitem__):
        node = nodes[name]
        if name in constants:
            frozen.node.append(const_node(name, np.asarray(constants[name])))
        elif node.op in ("VariableV2", "Variable"):
            if name not in variables:
                raise ValueError(f"checkpoint has no value for variable {name}")
            frozen.node.append(const_node(name, variables[name]))
        else:
            copy = frozen.node.add()
            copy.CopyFrom(node)
            del copy.input[:]
            copy.input.extend(i for i in node.input if not i.startswith("^"))
            if "_class" in copy.attr:
                del copy.attr["_class"]
    return frozen
