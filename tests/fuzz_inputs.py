"""Hostile inputs for the fuzz suite: seed checkpoints and the mutations applied to them.

A *seed* is an intact checkpoint held in memory (``{relative path: bytes}``): the TF-made
fixtures, small real-world checkpoints from the corpus (some with Snappy-compressed indexes) and
native ones built here (multi-block and Snappy indexes, partitioned tensors, strings, V1).

A *mutator* turns a seed into a hostile case. Byte-level mutators damage files blindly (flips,
truncations at block boundaries, shuffled and duplicated blocks, endless varints, lying Snappy
lengths, handles outside the file); structural ones parse the index, change entries, keys or the
header, and re-encode the table with correct checksums so the deeper parsers are exercised, not
just the block CRC check. Everything is deterministic in ``(master seed, case number)``.
"""

from __future__ import annotations

import contextlib
import os
import random
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tfckpt import protos
from tfckpt.bundle import table as table_mod
from tfckpt.bundle.reader import BundleReader
from tfckpt.bundle.table import (
    FOOTER_SIZE,
    MAGIC,
    TRAILER_SIZE,
    BlockHandle,
    TableReader,
    crc32c,
    encode_varint,
    iter_block,
    mask_crc,
)


@dataclass(frozen=True)
class Special:
    """Not a regular file: a FIFO, or a symlink to ``target`` (a device, a loop, a directory)."""

    kind: str  # fifo | symlink
    target: str = ""


Files = dict[str, "bytes | Special | None"]  # path -> contents; None: a directory there

MAX_SEED_BYTES = 400_000


@dataclass
class Seed:
    name: str
    files: dict[str, bytes]
    path: str  # what the commands are given (prefix, or a directory)
    fmt: str  # V1 | V2 | dir | graph (a graph file only)
    prefix: str  # the checkpoint prefix (relative)
    graph: str | None = None  # a graph file among ``files`` (.meta, saved_model.pb, .pbtxt)

    @property
    def index_name(self) -> str:
        return self.prefix + ".index" if self.fmt != "V1" else self.prefix

    def data_names(self) -> list[str]:
        base = self.prefix + ".data-"
        return sorted(n for n in self.files if n.startswith(base))


@dataclass
class Case:
    number: int
    seed: str
    mutator: str
    files: Files
    path: str  # relative path the commands are given
    detail: str = ""
    graph_path: str | None = None  # relative path of the case's graph file, if any
    kind: str = "V2"  # the seed's fmt

    def describe(self) -> str:
        return f"case {self.number}: seed={self.seed} mutator={self.mutator} {self.detail}".strip()


# ---- table plumbing (permissive: these writers happily produce broken tables) -----------------
def frame(contents: bytes, ctype: int = 0) -> bytes:
    """Block contents plus the 5-byte trailer with a correct checksum."""
    crc = mask_crc(crc32c(bytes([ctype]), crc32c(contents)))
    return contents + bytes([ctype]) + struct.pack("<I", crc)


def encode_block(
    pairs: list[tuple[bytes, bytes]], restart_interval: int = 16, prefix_compress: bool = True
) -> bytes:
    out = bytearray()
    restarts = [0]
    last = b""
    for i, (key, value) in enumerate(pairs):
        if i and i % restart_interval == 0:
            restarts.append(len(out))
            shared = 0
        elif i == 0 or not prefix_compress:
            shared = 0
        else:
            shared = 0
            while shared < min(len(last), len(key)) and last[shared] == key[shared]:
                shared += 1
        out += encode_varint(shared) + encode_varint(len(key) - shared) + encode_varint(len(value))
        out += key[shared:] + value
        last = key
    for r in restarts:
        out += struct.pack("<I", r)
    out += struct.pack("<I", len(restarts))
    return bytes(out)


def snappy(contents: bytes) -> bytes:
    import cramjam

    return bytes(cramjam.snappy.compress_raw(contents))


def footer(metaindex: BlockHandle, index: BlockHandle) -> bytes:
    out = metaindex.encode() + index.encode()
    out += b"\0" * (40 - len(out))
    return out + struct.pack("<II", MAGIC & 0xFFFFFFFF, MAGIC >> 32)


def build_table(
    blocks: list[list[tuple[bytes, bytes]]],
    compress: bool = False,
    index_keys: list[bytes] | None = None,
    restart_interval: int = 16,
) -> bytes:
    """A table of the given data blocks (no ordering checks); Snappy blocks when ``compress``."""
    out = bytearray()
    handles: list[tuple[bytes, BlockHandle]] = []
    for i, pairs in enumerate(blocks):
        contents = encode_block(pairs, restart_interval)
        ctype = 0
        if compress:
            contents, ctype = snappy(contents), 1
        handle = BlockHandle(len(out), len(contents))
        out += frame(contents, ctype)
        key = index_keys[i] if index_keys is not None else (pairs[-1][0] if pairs else b"")
        handles.append((key, handle))
    meta = BlockHandle(len(out), 8)
    out += frame(encode_block([]))
    index_contents = encode_block([(k, h.encode()) for k, h in handles], restart_interval=1)
    if compress:
        index_contents, ictype = snappy(index_contents), 1
    else:
        ictype = 0
    index = BlockHandle(len(out), len(index_contents))
    out += frame(index_contents, ictype)
    out += footer(meta, index)
    return bytes(out)


def one_block_table(contents: bytes, ctype: int = 0, key: bytes = b"") -> bytes:
    """A table whose only data block has exactly these (possibly lying) contents."""
    body = frame(contents, ctype)
    meta = BlockHandle(len(body), 8)
    body += frame(encode_block([]))
    index_contents = encode_block([(key, BlockHandle(0, len(contents)).encode())], 1)
    index = BlockHandle(len(body), len(index_contents))
    return body + frame(index_contents) + footer(meta, index)


def split_blocks(
    pairs: list[tuple[bytes, bytes]], per_block: int
) -> list[list[tuple[bytes, bytes]]]:
    per_block = max(per_block, 1)
    return [pairs[i : i + per_block] for i in range(0, len(pairs), per_block)] or [[]]


def read_pairs(data: bytes) -> list[tuple[bytes, bytes]]:
    return list(TableReader("<seed>", data))


@dataclass
class Layout:
    """Where the blocks of an intact table are: (offset, size) without trailers."""

    data: list[BlockHandle]
    metaindex: BlockHandle
    index: BlockHandle
    size: int

    def boundaries(self) -> list[int]:
        points = {0, self.size, self.size - FOOTER_SIZE, self.size - 8}
        for h in [*self.data, self.metaindex, self.index]:
            points |= {h.offset, h.offset + h.size, h.offset + h.size + 1}
            points.add(h.offset + h.size + TRAILER_SIZE)
        return sorted(p for p in points if 0 <= p <= self.size)


def layout(data: bytes) -> Layout:
    reader = TableReader("<seed>", data)
    index = reader.read_block(reader.index_handle)
    handles = []
    for _, value in iter_block(index, "<seed>"):
        off, pos = table_mod.decode_varint(value, 0, len(value))
        size, _ = table_mod.decode_varint(value, pos, len(value))
        handles.append(BlockHandle(off, size))
    return Layout(handles, reader.metaindex_handle, reader.index_handle, len(data))


def refresh_crc(data: bytearray, handle: BlockHandle) -> None:
    """Recompute the trailer checksum of the block at ``handle`` after editing its contents."""
    end = handle.offset + handle.size
    contents = bytes(data[handle.offset : end])
    ctype = data[end]
    data[end + 1 : end + 5] = struct.pack("<I", mask_crc(crc32c(bytes([ctype]), crc32c(contents))))


# ---- seeds ------------------------------------------------------------------------------------
def _read_tree(root: Path, names: list[Path]) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in names if p.is_file()}


def seed_from_prefix(name: str, prefix: Path, with_state: bool = True) -> Seed | None:
    """A seed of the files of one checkpoint prefix (and its ``checkpoint`` state file)."""
    directory = prefix.parent
    base = prefix.name
    members = [p for p in directory.iterdir() if p.name.startswith(base + ".") or p.name == base]
    if with_state and (directory / "checkpoint").is_file() and base != "checkpoint":
        members.append(directory / "checkpoint")
    files = _read_tree(directory, members)
    if not files or sum(len(v) for v in files.values()) > MAX_SEED_BYTES:
        return None
    fmt = "V2" if base + ".index" in files else "V1"
    graph = base + ".meta" if base + ".meta" in files else None
    if fmt == "V1" and base not in files:
        shards = sorted(n for n in files if n.startswith(base + "-"))
        if not shards:
            return None
        return Seed(name, files, shards[0], "V1", shards[0], graph)
    return Seed(name, files, base, fmt, base, graph)


def seed_from_savedmodel(name: str, directory: Path) -> Seed | None:
    members = [p for p in directory.rglob("*") if p.is_file()]
    files = _read_tree(directory, members)
    if "variables/variables.index" not in files or sum(map(len, files.values())) > MAX_SEED_BYTES:
        return None
    graph = "saved_model.pb" if "saved_model.pb" in files else "saved_model.pbtxt"
    return Seed(
        name,
        {f"sm/{k}": v for k, v in files.items()},
        "sm",
        "dir",
        "sm/variables/variables",
        f"sm/{graph}" if graph in files else None,
    )


def seed_from_graph(name: str, path: Path) -> Seed | None:
    if path.stat().st_size > MAX_SEED_BYTES // 2:
        return None
    return Seed(name, {path.name: path.read_bytes()}, path.name, "graph", path.name, path.name)


@contextlib.contextmanager
def _block_size(size: int) -> Iterator[None]:
    old = table_mod.BLOCK_SIZE
    table_mod.BLOCK_SIZE = size
    try:
        yield
    finally:
        table_mod.BLOCK_SIZE = old


def native_seeds(workdir: Path) -> list[Seed]:
    """Checkpoints written by tfckpt's own writer: every dtype family, strings, slices, two shards,
    multi-block and Snappy indexes, a V1 table. Available without TensorFlow."""
    import numpy as np

    from tfckpt.bundle.slices import encode_slice_key, slice_to_proto
    from tfckpt.bundle.state import record_latest
    from tfckpt.bundle.writer import BundleWriter, make_entry
    from tfckpt.dtypes import dtype_from_name

    workdir.mkdir(parents=True, exist_ok=True)
    seeds: list[Seed] = []
    rng = np.random.default_rng(7)
    tensors: dict[str, tuple[np.ndarray, str]] = {
        "a/kernel": (rng.standard_normal((6, 5)).astype(np.float32), "float32"),
        "a/bias": (np.arange(5, dtype=np.float64), "float64"),
        "a/step": (np.array(42, dtype=np.int64), "int64"),
        "b/mask": (np.array([True, False, True]), "bool"),
        "b/half": (np.linspace(-2, 2, 7).astype(np.float16), "float16"),
        "b/cplx": (np.array([1 + 2j, -3j], dtype=np.complex64), "complex64"),
        "b/u8": (np.arange(12, dtype=np.uint8).reshape(3, 4), "uint8"),
        "c/nan": (np.array([np.nan, np.inf, 0.0, 1.0], dtype=np.float32), "float32"),
        "c/empty": (np.zeros((0, 3), dtype=np.float32), "float32"),
        "s/scalar": (np.array(b"hello", dtype=object), "string"),
        "s/vec": (np.array([b"", b"x" * 40, b"\xff\x00"], dtype=object), "string"),
    }
    with _block_size(160):
        prefix = workdir / "native" / "model.ckpt-7"
        prefix.parent.mkdir(exist_ok=True)
        with BundleWriter(str(prefix), 1, force=True) as w:
            for name, (value, dt) in tensors.items():
                w.add_array(name, value, dtype_from_name(dt))
            # A partitioned tensor: full entry with two slices, each stored as its own entry.
            full = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)
            specs = [((0, 5), (0, -1)), ((5, 3), (0, -1))]
            slice_protos = [slice_to_proto(s, protos.TensorSliceProto()) for s in specs]
            w.add_entry(
                "p/part", make_entry(dtype_from_name("float32"), (8, 3), slices=slice_protos)
            )
            for spec in specs:
                part = full[spec[0][0] : spec[0][0] + spec[0][1]]
                off, size, crc = w.add_bytes(np.ascontiguousarray(part).tobytes())
                w.add_entry(
                    encode_slice_key(b"p/part", spec),
                    make_entry(dtype_from_name("float32"), part.shape, 0, off, size, crc),
                )
            w.commit()
        record_latest(str(prefix))
    seeds.append(_seed_from_dir("native_multiblock", prefix))
    # The same entries with a Snappy-compressed index (as some real checkpoints have).
    pairs = read_pairs((workdir / "native" / "model.ckpt-7.index").read_bytes())
    snappy_files = dict(seeds[-1].files)
    snappy_files["model.ckpt-7.index"] = build_table(split_blocks(pairs, 5), compress=True)
    seeds.append(Seed("native_snappy", snappy_files, "model.ckpt-7", "V2", "model.ckpt-7"))
    # Two shards: the second shard adopted from the first file.
    two = workdir / "native2" / "two"
    two.parent.mkdir(exist_ok=True)
    with BundleWriter(str(two), 2, force=True, own_shard=0) as w:
        w.add_array("x", np.arange(10, dtype=np.int32), dtype_from_name("int32"))
        w.adopt_shard(str(prefix) + ".data-00000-of-00001", 1)
        reader = BundleReader(str(prefix))
        for key, entry in reader.entries.items():
            if not entry.slices and not entry.is_slice_key:
                proto = protos.BundleEntryProto()
                proto.CopyFrom(entry.proto)
                proto.shard_id = 1
                w.add_entry(b"y/" + key, proto)
        reader.close()
        w.commit()
    seeds.append(_seed_from_dir("native_sharded", two))
    seeds.append(native_v1_seed())
    return seeds


def _seed_from_dir(name: str, prefix: Path) -> Seed:
    seed = seed_from_prefix(name, prefix)
    assert seed is not None
    seed.name = name
    return seed


def v1_value(name: str, spec: tuple[tuple[int, int], ...], field_name: str, values: list) -> bytes:
    from tfckpt.bundle.slices import slice_to_proto

    msg = protos.SavedTensorSlices()
    msg.data.name = name
    slice_to_proto(spec, msg.data.slice)
    getattr(msg.data.data, field_name).extend(values)
    return msg.SerializeToString()


def native_v1_seed() -> Seed:
    """A V1 table: float, int, string, half and complex tensors (one partitioned)."""
    from tfckpt.bundle.slices import encode_slice_key, slice_to_proto

    specs: list[tuple[str, int, tuple[int, ...], list, str]] = [
        ("w", 1, (2, 3), [float(i) for i in range(6)], "float_val"),
        ("i", 3, (4,), [1, 2, 3, 4], "int_val"),
        ("s", 7, (2,), [b"ab", b"c"], "string_val"),
        ("h", 19, (2,), [15360, 16384], "half_val"),
        ("c", 8, (2,), [1.0, 2.0, 3.0, 4.0], "scomplex_val"),
        ("q", 4, (3,), [1, 2, 255], "int_val"),
    ]
    meta = protos.SavedTensorSlices()
    pairs: list[tuple[bytes, bytes]] = []
    for name, dtype, shape, values, field_name in specs:
        t = meta.meta.tensor.add(name=name, type=dtype)
        for d in shape:
            t.shape.dim.add(size=d)
        spec = tuple((0, -1) for _ in shape)
        slice_to_proto(spec, t.slice.add())
        pairs.append(
            (encode_slice_key(name.encode(), spec), v1_value(name, spec, field_name, values))
        )
    # A partitioned V1 tensor: rows 0..1 and 2..3 of a (4, 2) float tensor.
    t = meta.meta.tensor.add(name="part", type=1)
    t.shape.dim.add(size=4)
    t.shape.dim.add(size=2)
    for start in (0, 2):
        spec = ((start, 2), (0, -1))
        slice_to_proto(spec, t.slice.add())
        pairs.append(
            (encode_slice_key(b"part", spec), v1_value("part", spec, "float_val", [1.0] * 4))
        )
    meta.meta.versions.producer = 1
    pairs.append((b"", meta.SerializeToString()))
    pairs.sort()
    return Seed("native_v1", {"model.ckpt": build_table([pairs])}, "model.ckpt", "V1", "model.ckpt")


def collect_seeds(
    fixtures_dir: Path | None,
    corpus: list[Path],
    workdir: Path,
    graphs: list[Path] | None = None,
) -> list[Seed]:
    seeds = native_seeds(workdir / "native-seeds")
    for graph in graphs or []:
        seed = seed_from_graph(f"graph:{graph.parent.name}/{graph.name}", graph)
        if seed is not None:
            seeds.append(seed)
    if fixtures_dir is not None and (fixtures_dir / "manifest.json").is_file():
        import json

        manifest = json.loads((fixtures_dir / "manifest.json").read_text())
        for name, entry in sorted(manifest.items()):
            if name.startswith("_"):
                continue
            if entry.get("kind") == "graphs":
                for graph in sorted((fixtures_dir / entry["path"]).iterdir()):
                    if not graph.is_file():
                        continue
                    seed = seed_from_graph(f"fx:graphs/{graph.name}", graph)
                    if seed is not None:
                        seeds.append(seed)
                continue
            path = fixtures_dir / entry["path"]
            seed = (
                seed_from_savedmodel(f"fx:{name}", path)
                if entry.get("kind") == "savedmodel"
                else seed_from_prefix(f"fx:{name}", path)
            )
            if seed is not None:
                seeds.append(seed)
    for prefix in corpus:
        seed = seed_from_prefix(f"corpus:{prefix.parent.name}/{prefix.name}", prefix)
        if seed is not None:
            seeds.append(seed)
    return seeds


# ---- mutators ---------------------------------------------------------------------------------
Mutator = Callable[[random.Random, Seed], "Case | None"]
MUTATORS: dict[str, tuple[Mutator, int]] = {}  # name -> (function, weight)


def mutator(name: str, weight: int = 1) -> Callable[[Mutator], Mutator]:
    def register(fn: Mutator) -> Mutator:
        MUTATORS[name] = (fn, weight)
        return fn

    return register


def _case(seed: Seed, files: Files, detail: str = "", path: str | None = None) -> Case:
    path = path if path is not None else seed.path
    return Case(-1, seed.name, "", files, path, detail, seed.graph, seed.fmt)


def _with(seed: Seed, name: str, data: bytes | None) -> Files:
    files: Files = dict(seed.files)
    if data is None:
        files.pop(name, None)
    else:
        files[name] = data
    return files


def _hostile_int(rng: random.Random, real: int = 0) -> int:
    return rng.choice(
        [
            -1,
            -(2**63),
            0,
            1,
            real - 1,
            real + 1,
            real * 2 + 7,
            2**31 - 1,
            2**31,
            2**32 + 1,
            2**60,
            10**15,
            2**62,
            2**63 - 1,
            rng.randrange(-(2**40), 2**40),
            rng.randrange(0, 4096),
        ]
    )


def _pick_file(rng: random.Random, seed: Seed, want_index: float = 0.7) -> str:
    if rng.random() < want_index and seed.index_name in seed.files:
        return seed.index_name
    return rng.choice(sorted(seed.files))


@mutator("flip", 4)
def m_flip(rng: random.Random, seed: Seed) -> Case:
    name = _pick_file(rng, seed)
    data = bytearray(seed.files[name])
    if not data:
        return _case(seed, _with(seed, name, b"\x00"), f"{name}: empty -> 1 byte")
    flips = []
    for _ in range(rng.choice([1, 1, 2, 3, 8])):
        pos = rng.randrange(len(data))
        data[pos] ^= rng.randrange(1, 256)
        flips.append(pos)
    return _case(seed, _with(seed, name, bytes(data)), f"{name}: bytes {flips} flipped")


@mutator("truncate_boundary", 3)
def m_truncate_boundary(rng: random.Random, seed: Seed) -> Case:
    name = seed.index_name
    data = seed.files[name]
    try:
        points = layout(data).boundaries()
    except Exception:
        points = [0, len(data) // 2, len(data) - 1]
    at = max(0, rng.choice(points) + rng.choice([-1, 0, 0, 1]))
    return _case(seed, _with(seed, name, data[:at]), f"{name}: truncated to {at} bytes")


@mutator("truncate_random", 2)
def m_truncate(rng: random.Random, seed: Seed) -> Case:
    name = _pick_file(rng, seed, 0.5)
    data = seed.files[name]
    at = rng.randrange(len(data) + 1) if data else 0
    return _case(seed, _with(seed, name, data[:at]), f"{name}: truncated to {at} bytes")


@mutator("garbage", 1)
def m_garbage(rng: random.Random, seed: Seed) -> Case:
    name = _pick_file(rng, seed, 0.5)
    data = seed.files[name]
    kind = rng.choice(["append", "prepend", "zero", "random", "magic_only"])
    if kind == "append":
        new = data + rng.randbytes(rng.choice([1, 7, 48, 1000]))
    elif kind == "prepend":
        new = rng.randbytes(rng.choice([1, 48, 300])) + data
    elif kind == "zero":
        start = rng.randrange(len(data) + 1)
        new = data[:start] + b"\0" * min(len(data) - start, 64) + data[start + 64 :]
    elif kind == "random":
        new = rng.randbytes(len(data))
    else:
        new = b"\0" * 40 + struct.pack("<II", MAGIC & 0xFFFFFFFF, MAGIC >> 32)
    return _case(seed, _with(seed, name, new), f"{name}: {kind}")


@mutator("shuffle_blocks", 2)
def m_shuffle_blocks(rng: random.Random, seed: Seed) -> Case | None:
    """Data blocks reordered: either in place (handles now wrong) or re-indexed (keys unsorted)."""
    name = seed.index_name
    data = seed.files[name]
    try:
        lay = layout(data)
    except Exception:
        return None
    chunks = [data[h.offset : h.offset + h.size + TRAILER_SIZE] for h in lay.data]
    order = list(range(len(chunks)))
    rng.shuffle(order)
    if rng.random() < 0.3 and len(chunks) > 0:  # also duplicate one
        order.append(rng.choice(order))
    body = bytearray()
    handles = []
    for i in order:
        handles.append((i, BlockHandle(len(body), len(chunks[i]) - TRAILER_SIZE)))
        body += chunks[i]
    if rng.random() < 0.5:
        # In place: the original index still points at the old offsets.
        new = bytes(body) + data[lay.metaindex.offset :]
        detail = f"data blocks moved to order {order}, index unchanged"
    else:
        index_keys = [
            list(iter_block(TableReader("<s>", data).read_block(lay.index), "<s>"))[i][0]
            for i, _ in handles
        ]
        meta = BlockHandle(len(body), 8)
        body += frame(encode_block([]))
        contents = encode_block(
            [(k, h.encode()) for k, (_, h) in zip(index_keys, handles)], restart_interval=1
        )
        index = BlockHandle(len(body), len(contents))
        body += frame(contents)
        new = bytes(body) + footer(meta, index)
        detail = f"data blocks in order {order}, re-indexed"
    return _case(seed, _with(seed, name, new), detail)


def _edit_block(
    rng: random.Random, seed: Seed, edit: Callable[[bytearray, random.Random], str]
) -> Case | None:
    name = seed.index_name
    data = bytearray(seed.files[name])
    try:
        lay = layout(bytes(data))
    except Exception:
        return None
    handle = rng.choice([*lay.data, lay.index, lay.metaindex])
    contents = bytearray(data[handle.offset : handle.offset + handle.size])
    if not contents:
        return None
    what = edit(contents, rng)
    data[handle.offset : handle.offset + handle.size] = contents
    refresh_crc(data, handle)
    return _case(seed, _with(seed, name, bytes(data)), f"block@{handle.offset}: {what} (crc ok)")


@mutator("block_flip_crc_ok", 4)
def m_block_flip(rng: random.Random, seed: Seed) -> Case | None:
    def edit(block: bytearray, rng: random.Random) -> str:
        spots = [rng.randrange(len(block)) for _ in range(rng.choice([1, 1, 2, 4]))]
        for s in spots:
            block[s] ^= rng.randrange(1, 256)
        return f"bytes {spots} flipped"

    return _edit_block(rng, seed, edit)


@mutator("restart_count", 2)
def m_restart_count(rng: random.Random, seed: Seed) -> Case | None:
    def edit(block: bytearray, rng: random.Random) -> str:
        if len(block) < 4:
            return "too short"
        value = rng.choice([0, 1, 2, 0xFFFFFFFF, 0x3FFFFFFF, len(block) // 4, len(block) // 4 - 1])
        block[-4:] = struct.pack("<I", value & 0xFFFFFFFF)
        if rng.random() < 0.5 and len(block) >= 8:
            block[-8:-4] = struct.pack("<I", rng.choice([0xFFFFFFFF, len(block), 3]))
        return f"restart count {value}"

    return _edit_block(rng, seed, edit)


@mutator("endless_varint", 2)
def m_endless_varint(rng: random.Random, seed: Seed) -> Case | None:
    def edit(block: bytearray, rng: random.Random) -> str:
        start = rng.choice([0, 0, rng.randrange(len(block))])
        n = min(rng.choice([3, 10, 11, 40]), len(block) - start)
        block[start : start + n] = b"\xff" * n
        return f"0xff x{n} at {start}"

    return _edit_block(rng, seed, edit)


@mutator("footer", 2)
def m_footer(rng: random.Random, seed: Seed) -> Case | None:
    name = seed.index_name
    data = seed.files[name]
    if len(data) < FOOTER_SIZE:
        return None
    body = data[:-FOOTER_SIZE]
    size = len(data)
    choice = rng.choice(["outside", "huge", "endless", "overlap_footer", "zero", "swap", "self"])
    if choice == "endless":
        raw = b"\xff" * 40
    else:
        handles = {
            "outside": (BlockHandle(size + 10, 8), BlockHandle(size * 2, 100)),
            "huge": (BlockHandle(2**63, 2**63), BlockHandle(2**64 - 1, 2**64 - 1)),
            "overlap_footer": (BlockHandle(size - 40, 8), BlockHandle(size - 48, 30)),
            "zero": (BlockHandle(0, 0), BlockHandle(0, 0)),
            "swap": None,
            "self": (BlockHandle(0, size - 53), BlockHandle(0, size - 53)),
        }[choice]
        if handles is None:
            lay = layout(data)
            handles = (lay.index, lay.metaindex)
        raw = handles[0].encode() + handles[1].encode()
        raw = (raw + b"\0" * 40)[:40]
    new = body + raw + data[-8:]
    return _case(seed, _with(seed, name, new), f"footer: {choice}")


@mutator("snappy_lie", 2)
def m_snappy_lie(rng: random.Random, seed: Seed) -> Case | None:
    """Snappy blocks whose length prefix lies, or whose payload is garbage (checksums right)."""
    if seed.fmt == "V1" and seed.index_name not in seed.files:
        return None
    try:
        pairs = read_pairs(seed.files[seed.index_name])
    except Exception:
        return None
    blocks = split_blocks(pairs, rng.choice([1, 3, 50]))
    table = bytearray(build_table(blocks, compress=True))
    lay = layout(bytes(table))
    handle = rng.choice([*lay.data, lay.index])
    contents = bytes(table[handle.offset : handle.offset + handle.size])
    real, pos = table_mod.decode_varint(contents, 0, len(contents))
    kind = rng.choice(["bigger", "smaller", "huge", "endless", "payload", "u32max"])
    claimed = {
        "bigger": real + rng.randrange(1, 100),
        "smaller": max(real - rng.randrange(1, 10), 0),
        "huge": 2**40,
        "u32max": 2**32 - 1,
        "endless": None,
        "payload": real,
    }[kind]
    head = b"\xff" * 12 if claimed is None else encode_varint(claimed)
    payload = contents[pos:]
    if kind == "payload":
        payload = rng.randbytes(len(payload))
    new_contents = head + payload
    # Rebuild the table around the lying block: handles must reflect its new size.
    frames: list[bytes] = []
    index_pairs = []
    offset = 0
    index_keys = [b[-1][0] if b else b"" for b in blocks]
    for i, block_handle in enumerate(lay.data):
        c = bytes(table[block_handle.offset : block_handle.offset + block_handle.size])
        if block_handle == handle:
            c = new_contents
        frames.append(frame(c, 1))
        index_pairs.append((index_keys[i], BlockHandle(offset, len(c)).encode()))
        offset += len(frames[-1])
    body = b"".join(frames)
    meta = BlockHandle(len(body), 8)
    body += frame(encode_block([]))
    index_contents = snappy(encode_block(index_pairs, restart_interval=1))
    if handle == lay.index:
        _, ipos = table_mod.decode_varint(index_contents, 0, len(index_contents))
        index_contents = head + index_contents[ipos:]
    index = BlockHandle(len(body), len(index_contents))
    body += frame(index_contents, 1)
    new = body + footer(meta, index)
    return _case(seed, _with(seed, seed.index_name, new), f"snappy {kind}: claims {claimed}")


# -- structural: entries, keys, header (re-encoded, checksums right) ----------------------------
def _reencode(rng: random.Random, pairs: list[tuple[bytes, bytes]]) -> bytes:
    per_block = rng.choice([1000, 1000, 4, 1])
    return build_table(split_blocks(pairs, per_block), compress=rng.random() < 0.2)


def _seed_pairs(seed: Seed) -> list[tuple[bytes, bytes]] | None:
    try:
        return read_pairs(seed.files[seed.index_name])
    except Exception:
        return None


@mutator("entry_field", 8)
def m_entry_field(rng: random.Random, seed: Seed) -> Case | None:
    if seed.fmt == "V1":
        return None
    pairs = _seed_pairs(seed)
    if not pairs or len(pairs) < 2:
        return None
    i = rng.randrange(1, len(pairs))
    key, value = pairs[i]
    entry = protos.BundleEntryProto.FromString(value)
    what = rng.choice(
        [
            "dtype",
            "dims",
            "rank",
            "unknown_rank",
            "shard",
            "offset",
            "size",
            "crc",
            "slices",
            "many",
            "empty",
        ]
    )
    if what == "dtype":
        entry.dtype = rng.choice([0, 7, 20, 21, 26, 27, 28, 29, 30, 99, 101, 107, 1000, 2**31 - 1])
    elif what == "dims":
        if not entry.shape.dim:
            entry.shape.dim.add(size=1)
        d = rng.choice(entry.shape.dim)
        d.size = rng.choice([-1, -(2**63), 0, 10**15, 2**62, 2**63 - 1, d.size + 1, 2**25])
    elif what == "rank":
        for _ in range(rng.choice([2, 20, 65, 200])):
            entry.shape.dim.add(size=rng.choice([1, 1, 2, 10**5]))
    elif what == "unknown_rank":
        entry.shape.unknown_rank = True
    elif what == "shard":
        entry.shard_id = rng.choice([-1, 1, 2, 2**31 - 1, -(2**31)])
    elif what == "offset":
        entry.offset = _hostile_int(rng, entry.offset)
    elif what == "size":
        entry.size = _hostile_int(rng, entry.size)
    elif what == "crc":
        entry.crc32c = rng.randrange(2**32)
    elif what == "slices":
        s = entry.slices.add()
        for _ in range(rng.choice([0, 1, len(entry.shape.dim), len(entry.shape.dim) + 1])):
            e = s.extent.add()
            if rng.random() < 0.7:
                e.start = _hostile_int(rng)
                e.length = rng.choice([-1, -2, 0, 1, 2**62, _hostile_int(rng)])
    elif what == "empty":  # no elements, but a dimension no array can have
        del entry.shape.dim[:]
        entry.shape.dim.add(size=0)
        entry.shape.dim.add(size=rng.choice([2**62, 2**63 - 1, 10**15]))
        entry.size = 0
    else:  # shape of 10^15 elements with a size that matches it
        del entry.shape.dim[:]
        entry.shape.dim.add(size=10**5)
        entry.shape.dim.add(size=10**10)
        entry.size = rng.choice([entry.size, 4 * 10**15])
    new_pairs = list(pairs)
    new_pairs[i] = (key, entry.SerializeToString())
    detail = f"entry {key[:40]!r}: {what}"
    return _case(seed, _with(seed, seed.index_name, _reencode(rng, new_pairs)), detail)


@mutator("entry_bytes", 3)
def m_entry_bytes(rng: random.Random, seed: Seed) -> Case | None:
    pairs = _seed_pairs(seed)
    if not pairs:
        return None
    i = rng.randrange(len(pairs))
    key, value = pairs[i]
    kind = rng.choice(["random", "truncate", "nested", "bad_wire", "unknown_fields", "empty"])
    if kind == "random":
        new = rng.randbytes(rng.choice([1, 5, len(value) or 1]))
    elif kind == "truncate":
        new = value[: rng.randrange(len(value) + 1)]
    elif kind == "nested":  # sub-messages nested far past any recursion limit
        depth = rng.choice([100, 5000, 100000])
        new = b"\x0b" * depth
    elif kind == "bad_wire":
        new = value + b"\x0f\x00"
    elif kind == "unknown_fields":
        new = value + encode_varint((1000 << 3) | 2) + encode_varint(5000) + b"x" * 10
    else:
        new = b""
    new_pairs = list(pairs)
    new_pairs[i] = (key, new)
    return _case(
        seed,
        _with(seed, seed.index_name, _reencode(rng, new_pairs)),
        f"value of {key[:40]!r}: {kind}",
    )


@mutator("keys", 4)
def m_keys(rng: random.Random, seed: Seed) -> Case | None:
    pairs = _seed_pairs(seed)
    if not pairs:
        return None
    new = list(pairs)
    kind = rng.choice(
        [
            "swap",
            "duplicate",
            "drop",
            "drop_header",
            "weird_key",
            "long_key",
            "reverse",
            "slice_key",
        ]
    )
    i = rng.randrange(len(new))
    if kind == "swap" and len(new) > 1:
        j = rng.randrange(len(new))
        new[i], new[j] = new[j], new[i]
    elif kind == "duplicate":
        new.insert(i, new[i])
    elif kind == "drop" and len(new) > 1:
        del new[rng.randrange(1, len(new))]
    elif kind == "drop_header":
        new = [p for p in new if p[0] != b""]
    elif kind == "weird_key":
        key = rng.choice(
            [b"\xff\xfe", b"a\nb\rc", b"\x1b[31mred", b"\xed\xa0\x80", b"\x00", b"..", b"/"]
        )
        new[i] = (key, new[i][1])
        new.sort()
    elif kind == "long_key":
        new[i] = (b"k" * rng.choice([300, 70_000]), new[i][1])
        new.sort()
    elif kind == "reverse":
        new.reverse()
    elif kind == "slice_key":
        # A key that looks like a slice key but decodes to nothing sensible.
        new.append((b"\x00" + rng.randbytes(rng.randrange(0, 12)), new[-1][1]))
        new.sort()
    return _case(seed, _with(seed, seed.index_name, _reencode(rng, new)), f"keys: {kind} at {i}")


@mutator("header", 3)
def m_header(rng: random.Random, seed: Seed) -> Case | None:
    if seed.fmt == "V1":
        return None
    pairs = _seed_pairs(seed)
    if not pairs or pairs[0][0] != b"":
        return None
    header = protos.BundleHeaderProto.FromString(pairs[0][1])
    kind = rng.choice(["shards", "endian", "producer", "min_consumer", "bad_consumers", "garbage"])
    raw: bytes
    if kind == "shards":
        header.num_shards = rng.choice([0, -1, 2, 3, 1000, 100_000, 10**6, 2**31 - 1])
    elif kind == "endian":
        header.endianness = rng.choice([1, 2, 7])
    elif kind == "producer":
        header.version.producer = -5
    elif kind == "min_consumer":
        header.version.min_consumer = 2
    elif kind == "bad_consumers":
        header.version.bad_consumers.append(1)
    raw = rng.randbytes(7) if kind == "garbage" else header.SerializeToString()
    new = [(b"", raw), *pairs[1:]]
    return _case(seed, _with(seed, seed.index_name, _reencode(rng, new)), f"header {kind}")


def _append_entry_data(
    seed: Seed, pairs: list[tuple[bytes, bytes]], key: bytes, entry: object, data: bytes
) -> Files:
    """Append ``data`` to shard 0 and point ``entry`` at it (size and CRC right)."""
    shard = seed.data_names()[0]
    files = dict(seed.files)
    old = seed.files[shard]
    entry.offset = len(old)  # type: ignore[attr-defined]
    entry.size = len(data)  # type: ignore[attr-defined]
    entry.shard_id = 0  # type: ignore[attr-defined]
    entry.crc32c = mask_crc(crc32c(data))  # type: ignore[attr-defined]
    files[shard] = old + data
    new_pairs = [(k, entry.SerializeToString() if k == key else v) for k, v in pairs]  # type: ignore[attr-defined]
    files[seed.index_name] = build_table([new_pairs])
    return files


@mutator("string_tensor", 3)
def m_string_tensor(rng: random.Random, seed: Seed) -> Case | None:
    """String tensors whose element lengths claim 2^60 bytes, or whose counts lie (CRCs right)."""
    if seed.fmt == "V1" or not seed.data_names():
        return None
    pairs = _seed_pairs(seed)
    if not pairs or len(pairs) < 2:
        return None
    i = rng.randrange(1, len(pairs))
    key, value = pairs[i]
    entry = protos.BundleEntryProto.FromString(value)
    entry.dtype = 7
    del entry.slices[:]
    n = rng.choice([1, 2, 3])
    del entry.shape.dim[:]
    entry.shape.dim.add(size=rng.choice([n, n, 10**15, 2**40]))
    lengths = [rng.choice([2**60, 2**64 - 1, 2**32, 3, 0]) for _ in range(n)]
    body = b"".join(encode_varint(x) for x in lengths)
    crc = 0
    for x in lengths:
        crc = crc32c(x.to_bytes(4 if x <= 0xFFFFFFFF else 8, "little"), crc)
    body += struct.pack("<I", mask_crc(crc)) + b"abc" * rng.choice([0, 1, 5])
    if rng.random() < 0.3:
        body = b"\xff" * rng.choice([10, 11, 30])  # lengths that never end
    files = _append_entry_data(seed, pairs, key, entry, body)
    return _case(
        seed, files, f"{key[:40]!r}: string lengths {lengths} shape {list(entry.shape.dim)}"
    )


@mutator("entry_pointing", 3)
def m_entry_pointing(rng: random.Random, seed: Seed) -> Case | None:
    """A numeric entry whose bytes are valid (CRC right) but whose size does not fit its shape."""
    if seed.fmt == "V1" or not seed.data_names():
        return None
    pairs = _seed_pairs(seed)
    if not pairs or len(pairs) < 2:
        return None
    i = rng.randrange(1, len(pairs))
    key, value = pairs[i]
    entry = protos.BundleEntryProto.FromString(value)
    if entry.slices:
        return None
    data = rng.randbytes(rng.choice([0, 1, 3, 16, 1000]))
    if rng.random() < 0.5:
        entry.dtype = rng.choice([1, 2, 3, 9, 10, 14, 19, 8, 18, 24, 29])
    files = _append_entry_data(seed, pairs, key, entry, data)
    return _case(seed, files, f"{key[:40]!r}: {len(data)} stored bytes, dtype {entry.dtype}")


@mutator("slices", 3)
def m_slices(rng: random.Random, seed: Seed) -> Case | None:
    """Partitioned entries with overlapping, missing, out-of-range or very many slices."""
    if seed.fmt == "V1":
        return None
    pairs = _seed_pairs(seed)
    if not pairs or len(pairs) < 2:
        return None
    from tfckpt.bundle.slices import encode_slice_key

    i = rng.randrange(1, len(pairs))
    key, value = pairs[i]
    entry = protos.BundleEntryProto.FromString(value)
    kind = rng.choice(["overlap", "many", "outside", "add_full", "wrong_shape", "string"])
    rank = len(entry.shape.dim)
    del entry.slices[:]
    extra: list[tuple[bytes, bytes]] = []
    if kind == "many":
        count = rng.choice([100, 3000])
        for j in range(count):
            s = entry.slices.add()
            for _ in range(rank):
                e = s.extent.add()
                e.start, e.length = j % 7, 1
    else:
        spec_len = {
            "overlap": [(0, 1), (0, 1)],
            "outside": [(5, 10**12)],
            "add_full": [(0, -1)],
            "wrong_shape": [(0, 1)],
            "string": [(0, -1)],
        }[kind]
        for start, length in spec_len:
            s = entry.slices.add()
            for _ in range(rank):
                e = s.extent.add()
                if length != -1:
                    e.start, e.length = start, length
            spec = tuple((start, length) for _ in range(rank))
            part = protos.BundleEntryProto()
            part.CopyFrom(entry)
            del part.slices[:]
            if kind == "string":
                part.dtype = entry.dtype = 7
            if kind == "wrong_shape":
                part.shape.dim.add(size=3)
            extra.append((encode_slice_key(key, spec), part.SerializeToString()))
    new = [(k, entry.SerializeToString() if k == key else v) for k, v in pairs]
    new = sorted(dict(new + extra).items())
    return _case(seed, _with(seed, seed.index_name, _reencode(rng, new)), f"{key[:40]!r}: {kind}")


@mutator("data_files", 4)
def m_data_files(rng: random.Random, seed: Seed) -> Case | None:
    names = seed.data_names()
    if not names:
        return None
    name = rng.choice(names)
    data = seed.files[name]
    kind = rng.choice(["missing", "truncate", "empty", "directory", "extra", "swap", "extend"])
    files: Files = dict(seed.files)
    if kind == "missing":
        del files[name]
    elif kind == "truncate":
        files[name] = data[: rng.randrange(len(data) + 1)] if data else b""
    elif kind == "empty":
        files[name] = b""
    elif kind == "directory":
        files[name] = None
    elif kind == "extra":
        files[name.replace("-of-", "-of-").rsplit("-of-", 1)[0] + "-of-00009"] = b"junk"
    elif kind == "swap":
        files[name] = seed.files[seed.index_name]
    else:
        files[name] = data + rng.randbytes(100)
    return _case(seed, files, f"{name}: {kind}")


@mutator("special_files", 1)
def m_special_files(rng: random.Random, seed: Seed) -> Case | None:
    """Files that are not regular files: FIFOs (an open would block), links to devices that
    never end, symlink loops, directories."""
    names = [n for n in seed.files if not n.endswith("/")]
    if not names:
        return None
    name = rng.choice([seed.index_name, *seed.data_names(), *names][:8])
    if name not in seed.files:
        name = rng.choice(names)
    special = rng.choice(
        [
            Special("fifo"),
            Special("symlink", "/dev/zero"),
            Special("symlink", "/dev/urandom"),
            Special("symlink", os.path.basename(name)),  # a loop: the link points at itself
            Special("symlink", "/"),
            Special("symlink", "/nonexistent/target"),
        ]
    )
    files: Files = dict(seed.files)
    files[name] = special
    case = _case(seed, files, f"{name}: {special}")
    if rng.random() < 0.2:
        directory = os.path.dirname(seed.prefix)
        files[os.path.join(directory, "checkpoint")] = Special("fifo")
        case.path = directory or "."
    return case


@mutator("state_file", 2)
def m_state_file(rng: random.Random, seed: Seed) -> Case | None:
    if seed.fmt == "dir":
        return None
    directory = os.path.dirname(seed.prefix)
    state = os.path.join(directory, "checkpoint") if directory else "checkpoint"
    if state in seed.files and seed.prefix.endswith("checkpoint"):
        return None
    text = rng.choice(
        [
            b'model_checkpoint_path: "nowhere"\n',
            b'model_checkpoint_path: "/abs/elsewhere/model.ckpt-1"\n',
            b'model_checkpoint_path: "../../../../etc/passwd"\n',
            b'model_checkpoint_path: "a\\000b"\n',
            b'model_checkpoint_path: "' + seed.prefix.encode() + b'.index"\n',
            b"model_checkpoint_path: 17\n",
            b"\xff\xfe garbage {{{{",
            b"all_model_checkpoint_paths: " + b'"x" ' * 1000,
            b"{" * 10000,
            b"model_checkpoint_path: '" + b"x" * 5000 + b"'\n",
            b'model_checkpoint_path: "checkpoint"\n',
            b'model_checkpoint_path: "."\n',
            b"",
        ]
    )
    files: Files = dict(seed.files)
    files[state] = text
    return _case(seed, files, f"state file {text[:40]!r}", path=directory or ".")


@mutator("path_kind", 1)
def m_path_kind(rng: random.Random, seed: Seed) -> Case | None:
    """The same (lightly damaged) checkpoint, given as its .index, a data file, or its directory."""
    base = m_flip(rng, seed) if rng.random() < 0.5 else _case(seed, dict(seed.files))
    choices = [n for n in seed.files if n.startswith(seed.prefix)] + [
        os.path.dirname(seed.prefix) or "."
    ]
    base.path = rng.choice(choices)
    base.detail += f" (path {base.path})"
    return base


@mutator("v1_values", 3)
def m_v1_values(rng: random.Random, seed: Seed) -> Case | None:
    """V1 records with lying counts, out-of-range halves, odd complex lists, absurd shapes."""
    if seed.fmt != "V1":
        return None
    pairs = _seed_pairs(seed)
    if not pairs:
        return None
    i = rng.randrange(len(pairs))
    key, value = pairs[i]
    msg = protos.SavedTensorSlices.FromString(value)
    kind = rng.choice(
        ["shape", "type", "slice", "count", "half", "complex", "drop_meta", "garbage"]
    )
    if key == b"" and msg.HasField("meta") and msg.meta.tensor:
        t = rng.choice(msg.meta.tensor)
        if kind == "shape":
            if not t.shape.dim:
                t.shape.dim.add(size=1)
            rng.choice(t.shape.dim).size = rng.choice([-1, 10**15, 2**62, 0, 10**7])
        elif kind == "type":
            t.type = rng.choice([0, 7, 8, 18, 19, 14, 21, 99, 4, 5, 6])
        elif kind == "slice":
            s = t.slice.add()
            e = s.extent.add()
            e.start, e.length = rng.choice([(0, 10**12), (-1, 2), (2**62, 2**62), (0, 0)])
        elif kind == "drop_meta":
            msg.ClearField("meta")
        else:
            del t.slice[:]
    elif msg.HasField("data"):
        data = msg.data.data
        if kind == "half":
            data.ClearField("half_val")
            data.half_val.extend([70000, -5, 2**31 - 1])
        elif kind == "complex":
            data.ClearField("scomplex_val")
            data.scomplex_val.extend([1.0, 2.0, 3.0])
        elif kind == "count":
            data.float_val.extend([1.0] * rng.choice([1, 1000]))
            data.int_val.extend([2**31 - 1, -(2**31)])
        elif kind == "type":
            data.ClearField("float_val")
            data.string_val.append(b"zz")
    raw = rng.randbytes(9) if kind == "garbage" else msg.SerializeToString()
    new = list(pairs)
    new[i] = (key, raw)
    return _case(
        seed, _with(seed, seed.index_name, _reencode(rng, new)), f"v1 {key[:30]!r}: {kind}"
    )


@mutator("object_graph", 2)
def m_object_graph(rng: random.Random, seed: Seed) -> Case | None:
    """TF2: the object graph string replaced by garbage, a non-scalar or a non-string tensor."""
    if seed.fmt == "V1" or not seed.data_names():
        return None
    pairs = _seed_pairs(seed)
    key = b"_CHECKPOINTABLE_OBJECT_GRAPH"
    if not pairs or key not in dict(pairs):
        return None
    from tfckpt.bundle.writer import encode_string_tensor

    entry = protos.BundleEntryProto.FromString(dict(pairs)[key])
    kind = rng.choice(["garbage", "empty_vector", "vector", "float", "nested"])
    import numpy as np

    del entry.shape.dim[:]
    if kind == "float":
        entry.dtype = 1
        body = struct.pack("<f", 1.0)
    else:
        if kind == "garbage":
            values = [rng.randbytes(rng.choice([1, 10, 100]))]
        elif kind == "nested":
            values = [b"\x0a\x02" * 2000]
        elif kind == "empty_vector":
            values = []
            entry.shape.dim.add(size=0)
        else:
            values = [b"", b"\x0a\x00"]
            entry.shape.dim.add(size=2)
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        body, _ = encode_string_tensor(arr)
    files = _append_entry_data(seed, pairs, key, entry, body)
    return _case(seed, files, f"object graph: {kind}")


@mutator("graph_file", 3)
def m_graph_file(rng: random.Random, seed: Seed) -> Case | None:
    """Graph files (.meta, saved_model.pb, .pb, .pbtxt): damaged, nested past any recursion
    limit, with lengths that lie, or in the other encoding."""
    if seed.graph is None:
        return None
    name = seed.graph
    data = seed.files[name]
    text = name.endswith((".pbtxt", ".txt"))
    kind = rng.choice(
        [
            "flip",
            "truncate",
            "nested",
            "lying_length",
            "garbage",
            "empty",
            "swap_encoding",
            "huge_field",
        ]
    )
    if kind == "flip" and data:
        raw = bytearray(data)
        for _ in range(rng.choice([1, 2, 8])):
            raw[rng.randrange(len(raw))] ^= rng.randrange(1, 256)
        new = bytes(raw)
    elif kind == "truncate":
        new = data[: rng.randrange(len(data) + 1)]
    elif kind == "nested":
        depth = rng.choice([200, 5000, 200_000])
        if text:
            new = b"node { " * depth + b"}" * rng.choice([0, depth])
        else:
            # A chain of length-delimited sub-messages (field 1), innermost first.
            body = b""
            for _ in range(min(depth, 3000)):
                body = b"\x0a" + encode_varint(len(body)) + body
            new = body if rng.random() < 0.5 else b"\x0b" * depth
    elif kind == "lying_length":
        new = b"\x0a" + encode_varint(rng.choice([2**31, 2**60, len(data) + 5])) + data[:50]
    elif kind == "garbage":
        new = rng.randbytes(rng.choice([1, 100, 5000]))
    elif kind == "empty":
        new = b""
    elif kind == "swap_encoding":
        new = b'node { name: "x" op: "Const" attr { key: "value" value { s: "\\377" } } }\n'
        if text:
            new = data[: len(data) // 2]  # binary-ish leftovers in a text file
    else:  # many tiny repeated sub-messages (2,000 empty meta graphs in a SavedModel, ...)
        new = (b"\x12\x02\x0a\x00" * rng.choice([10, 2_000])) + data
    files: Files = dict(seed.files)
    files[name] = new
    case = _case(seed, files, f"graph {name}: {kind}")
    case.graph_path = name
    return case


def make_case(number: int, master: int, seeds: list[Seed]) -> Case:
    """Case ``number`` of the run with master seed ``master``: always the same case."""
    rng = random.Random(f"{master}:{number}")
    names = sorted(MUTATORS)
    weights = [MUTATORS[n][1] for n in names]
    for _ in range(20):
        seed = rng.choice(seeds)
        name = "graph_file" if seed.fmt == "graph" else rng.choices(names, weights)[0]
        case = MUTATORS[name][0](rng, seed)
        if case is not None:
            case.number = number
            case.mutator = name
            return case
    seed = seeds[0]
    return Case(number, seed.name, "none", dict(seed.files), seed.path, "", seed.graph, seed.fmt)


def write_case(case_files: Files, root: Path) -> None:
    for rel, data in sorted(case_files.items()):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            target.mkdir(exist_ok=True)
        elif isinstance(data, Special):
            if data.kind == "fifo":
                os.mkfifo(target)
            else:
                target.symlink_to(data.target)
        else:
            target.write_bytes(data)


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under ``root`` (links and FIFOs by kind, never opened)."""
    out: dict[str, object] = {}
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(directory) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = None
            elif stat.S_ISREG(st.st_mode):
                out[rel] = p.read_bytes()
            else:
                out[rel] = ("special", st.st_mode)
    return dict(sorted(out.items()))


__all__ = [
    "MUTATORS",
    "Case",
    "Seed",
    "build_table",
    "collect_seeds",
    "field",
    "make_case",
    "snapshot",
    "write_case",
]
