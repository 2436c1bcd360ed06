"""The LevelDB-style sorted table inside ``.index`` (and V1 checkpoint) files. FORMAT.md section 2.

Reading verifies every block checksum and bounds every length against the real file, so corrupt
or hostile files fail with ``CorruptCheckpoint`` naming the file and the offset. Writing produces
the same layout TensorFlow's writer does (256 KiB blocks, restart interval 16, no compression).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import google_crc32c

from tfckpt import storage
from tfckpt.errors import CorruptCheckpoint, TfckptError
from tfckpt.storage import Blob

if TYPE_CHECKING:
    import numpy as np

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
TRAILER_SIZE = 5
BLOCK_SIZE = 262144
RESTART_INTERVAL = 16
NO_COMPRESSION = 0
SNAPPY_COMPRESSION = 1
# A block (stored or decompressed) larger than this is a lie: TF's blocks are ~256 KiB, and one
# entry larger than a block gets a block of its own (index values are small protos).
MAX_BLOCK_SIZE = 64 * 1024 * 1024
# Snappy's densest encoding (a 3-byte copy of 64 bytes) expands 64/3 ~ 21x; a block claiming more
# than this ratio of its compressed size is lying, whatever its claimed length.
MAX_SNAPPY_RATIO = 22
# Table files up to this size are read into memory at once; larger ones block by block.
READ_WHOLE_BELOW = 16 * 1024 * 1024
_MASK_DELTA = 0xA282EAD8


def crc32c(data: bytes | memoryview, crc: int = 0) -> int:
    """Castagnoli CRC of ``data``, continuing from ``crc``; hardware-accelerated either way.

    ``google-crc32c`` imports in milliseconds but accepts only ``bytes`` (index blocks); views of
    memory-mapped tensor data go to the ``crc32c`` package, which hashes any buffer without
    copying but costs ~40 ms to import, so it is loaded only when tensor bytes are checked.
    """
    if isinstance(data, bytes):
        return google_crc32c.extend(crc, data) if crc else google_crc32c.value(data)
    import crc32c as buffer_crc

    return int(buffer_crc.crc32c(data, crc))


# CRC32C of ``bytes``: ``crc32c`` without its dispatch (and without a Python frame), for loops
# over many small ones.
crc32c_bytes: Callable[[bytes], int] = google_crc32c.value


def mask_crc(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def decode_varint(
    buf: bytes | memoryview, pos: int, end: int, what: str = "varint"
) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; refuses to run past ``end`` or 10 bytes."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ValueError(f"truncated {what}")
        if shift > 63:
            raise ValueError(f"{what} longer than 10 bytes")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7


def encode_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


@dataclass(frozen=True)
class BlockHandle:
    offset: int
    size: int

    def encode(self) -> bytes:
        return encode_varint(self.offset) + encode_varint(self.size)


def _decode_handle(buf: bytes | memoryview, pos: int, end: int) -> tuple[BlockHandle, int]:
    offset, pos = decode_varint(buf, pos, end, "block handle")
    size, pos = decode_varint(buf, pos, end, "block handle")
    return BlockHandle(offset, size), pos


def scan_block(block: bytes, where: str) -> tuple[list[int], list[int], list[int], list[int]]:
    """Where the entries of one uncompressed block are, checking every length: per entry the
    shared key prefix length, the start of the unshared key bytes, the start of the value and
    its end (the unshared key ends where the value starts). Keys are assembled by the caller."""
    n = len(block)
    if n < 4:
        raise CorruptCheckpoint(f"{where}: block of {n} bytes is too short")
    (num_restarts,) = struct.unpack_from("<I", block, n - 4)
    if num_restarts == 0 or 4 * (num_restarts + 1) > n:
        raise CorruptCheckpoint(f"{where}: bad restart count {num_restarts}")
    limit = n - 4 * (num_restarts + 1)
    pos = 0
    key_len = 0
    shared_out: list[int] = []
    key_starts: list[int] = []
    value_starts: list[int] = []
    value_ends: list[int] = []
    try:
        while pos < limit:
            shared, pos = decode_varint(block, pos, limit)
            unshared, pos = decode_varint(block, pos, limit)
            vlen, pos = decode_varint(block, pos, limit)
            if shared > key_len or pos + unshared + vlen > limit:
                raise ValueError("entry overruns its block")
            key_len = shared + unshared
            shared_out.append(shared)
            key_starts.append(pos)
            pos += unshared
            value_starts.append(pos)
            pos += vlen
            value_ends.append(pos)
    except ValueError as exc:
        raise CorruptCheckpoint(f"{where}: {exc} at block offset {pos}") from None
    return shared_out, key_starts, value_starts, value_ends


def iter_block(block: bytes, where: str) -> Iterator[tuple[bytes, bytes]]:
    """Yield (key, value) pairs of one uncompressed block, checking every length."""
    key = b""
    for shared, start, vstart, vend in zip(*scan_block(block, where)):
        key = key[:shared] + block[start:vstart]
        yield key, block[vstart:vend]


def _snappy_decompress(data: bytes, where: str) -> bytes:
    import cramjam

    try:
        claimed, _ = decode_varint(data, 0, min(len(data), 10), "snappy length")
    except ValueError as exc:
        raise CorruptCheckpoint(f"{where}: bad Snappy block ({exc})") from None
    if claimed > MAX_BLOCK_SIZE or claimed > MAX_SNAPPY_RATIO * len(data) + 64:
        raise CorruptCheckpoint(
            f"{where}: Snappy block of {len(data)} bytes claims {claimed} bytes (corrupt)"
        )
    try:
        out = bytes(cramjam.snappy.decompress_raw(data))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise CorruptCheckpoint(f"{where}: bad Snappy block ({exc})") from None
    if len(out) != claimed:
        raise CorruptCheckpoint(f"{where}: Snappy block length mismatch")
    return out


def has_table_magic(path: str) -> bool:
    """Whether ``path`` is a regular file ending with the table magic (a table, maybe damaged)."""
    try:
        with storage.open_blob(path) as blob:
            tail = blob.pread(blob.size - 8, 8) if blob.size >= FOOTER_SIZE else b""
    except (OSError, TfckptError):
        return False
    return len(tail) == 8 and struct.unpack("<Q", tail)[0] == MAGIC


class TableReader:
    """Reads a table's blocks (verifying each) and iterates its entries in key order.

    ``data`` is the whole file in memory, or an open ``storage.Blob`` whose blocks are read on
    demand (``TableReader.open`` does that for large files, so probing an arbitrary big file
    with ``looks_like_v1`` reads a few blocks, not the file; remotely, a few ranged requests).
    """

    def __init__(self, path: str, data: bytes | Blob) -> None:
        self.path = path
        self._data: bytes | None = None
        self._file: Blob | None = None
        if isinstance(data, bytes | bytearray | memoryview):
            self._data = bytes(data)
            size = len(self._data)
        else:
            self._file = data
            size = data.size
        self.size = size
        if size < FOOTER_SIZE:
            raise CorruptCheckpoint(f"{path}: {size} bytes is too short for a table (truncated?)")
        foot = self._read(size - FOOTER_SIZE, FOOTER_SIZE)
        lo, hi = struct.unpack_from("<II", foot, FOOTER_SIZE - 8)
        if (hi << 32) | lo != MAGIC:
            from tfckpt.storage.lfs import LFS_POINTER, MAX_POINTER_BYTES, is_lfs_pointer_bytes

            if size <= MAX_POINTER_BYTES and is_lfs_pointer_bytes(self._read(0, size)):
                raise CorruptCheckpoint(f"{path}: {LFS_POINTER}")
            raise CorruptCheckpoint(f"{path}: not a checkpoint table (bad magic; truncated?)")
        try:
            self.metaindex_handle, pos = _decode_handle(foot, 0, FOOTER_SIZE - 8)
            self.index_handle, _ = _decode_handle(foot, pos, FOOTER_SIZE - 8)
        except ValueError as exc:
            raise CorruptCheckpoint(f"{path}: bad footer ({exc})") from None

    @classmethod
    def open(cls, path: str) -> TableReader:
        try:
            f = storage.open_blob(path)
        except FileNotFoundError:
            from tfckpt.errors import CheckpointNotFound

            raise CheckpointNotFound(f"{path}: no such file") from None
        except OSError as exc:
            raise CorruptCheckpoint(f"{path}: cannot read ({exc.strerror})") from None
        try:
            if f.size <= READ_WHOLE_BELOW:
                with f:
                    return cls(path, f.read_all())
            return cls(path, f)
        except OSError as exc:
            f.close()
            raise CorruptCheckpoint(f"{path}: cannot read ({exc.strerror})") from None
        except BaseException:
            f.close()
            raise

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> TableReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, offset: int, n: int) -> bytes:
        if self._data is not None:
            return self._data[offset : offset + n]
        assert self._file is not None
        return self._file.pread(offset, n)

    def read_block(self, handle: BlockHandle) -> bytes:
        end = handle.offset + handle.size + TRAILER_SIZE
        if end > self.size - FOOTER_SIZE or handle.size < 0:
            raise CorruptCheckpoint(
                f"{self.path}: block at offset {handle.offset} runs past the end of the file "
                "(truncated?)"
            )
        if handle.size > MAX_BLOCK_SIZE:
            raise CorruptCheckpoint(
                f"{self.path}: block at offset {handle.offset} claims {handle.size} bytes (corrupt)"
            )
        framed = self._read(handle.offset, handle.size + TRAILER_SIZE)
        contents = framed[: handle.size]
        ctype = framed[handle.size]
        (stored,) = struct.unpack_from("<I", framed, handle.size + 1)
        actual = crc32c(framed[handle.size : handle.size + 1], crc32c(contents))
        if unmask_crc(stored) != actual:
            raise CorruptCheckpoint(
                f"{self.path}: block checksum mismatch at offset {handle.offset} (corrupt copy?)"
            )
        if ctype == NO_COMPRESSION:
            return contents
        if ctype == SNAPPY_COMPRESSION:
            return _snappy_decompress(contents, f"{self.path}: block at offset {handle.offset}")
        raise CorruptCheckpoint(
            f"{self.path}: unknown block compression {ctype} at offset {handle.offset}"
        )

    def block_handles(self) -> Iterator[BlockHandle]:
        """The handles of the data blocks, in key order, from the index block."""
        index = self.read_block(self.index_handle)
        where = f"{self.path}: index block"
        for _, handle_bytes in iter_block(index, where):
            try:
                handle, _ = _decode_handle(handle_bytes, 0, len(handle_bytes))
            except ValueError as exc:
                raise CorruptCheckpoint(f"{where}: bad block handle ({exc})") from None
            yield handle

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        """All (key, value) pairs in order; keys must be strictly increasing."""
        prev: bytes | None = None
        for handle in self.block_handles():
            block = self.read_block(handle)
            for key, value in iter_block(block, f"{self.path}: block at offset {handle.offset}"):
                if prev is not None and key <= prev:
                    what = "duplicate key" if key == prev else "keys out of order at"
                    raise CorruptCheckpoint(f"{self.path}: {what} {key[:60]!r} (corrupt index)")
                prev = key
                yield key, value


class TableWriter:
    """Streams sorted (key, value) pairs into a table file; call ``finish()`` at the end."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._offset = 0
        self._block = bytearray()
        self._restarts: list[int] = [0]
        self._counter = 0
        self._last_key: bytes | None = None
        self._block_last_key = b""
        self._index: list[tuple[bytes, BlockHandle]] = []

    def add(self, key: bytes, value: bytes) -> None:
        """Append one entry; keys must be strictly increasing."""
        self.add_many(((key, value),))

    def add_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """``add`` for each (key, value) in order: the same table, with the per-entry work of
        a 10^6-entry index kept to a few byte operations."""
        restart_every = RESTART_INTERVAL
        limit = BLOCK_SIZE
        from_bytes = int.from_bytes
        for key, value in items:
            last = self._last_key
            if last is not None and key <= last:
                raise ValueError(f"table keys must be strictly increasing: {key!r}")
            block = self._block
            if self._counter >= restart_every:
                self._restarts.append(len(block))
                self._counter = 0
                shared = 0
            elif last is None or not block:
                shared = 0
            else:  # the common prefix: bytes compared as one big integer, the first
                # differing byte is where the XOR's highest set bit is
                n = min(len(last), len(key))
                x = from_bytes(last[:n], "big") ^ from_bytes(key[:n], "big")
                shared = n - 1 - (x.bit_length() - 1) // 8 if x else n
            unshared = len(key) - shared
            vlen = len(value)
            if shared < 128 and unshared < 128 and vlen < 128:
                block += bytes((shared, unshared, vlen))
            else:
                block += encode_varint(shared) + encode_varint(unshared) + encode_varint(vlen)
            block += key[shared:] if shared else key
            block += value
            self._counter += 1
            self._last_key = key
            self._block_last_key = key
            if len(block) + 4 * len(self._restarts) + 4 >= limit:
                self._flush_data_block()

    def add_columns(
        self, keys: Sequence[bytes], values: bytes, starts: np.ndarray, ends: np.ndarray
    ) -> None:
        """``add`` for each key and value ``values[starts[i]:ends[i]]`` of a whole table at once
        (the first thing added): the same bytes, built with numpy (``bulk.table_blocks``)."""
        from tfckpt.bundle.bulk import table_blocks

        if self._last_key is not None:
            raise ValueError("add_columns must come first")
        for contents, last in table_blocks(
            keys, values, starts, ends, BLOCK_SIZE, RESTART_INTERVAL
        ):
            self._index.append((last, self._write_raw_block(contents)))
        if len(keys):
            self._last_key = self._block_last_key = keys[-1]

    def _finish_block(self, block: bytearray, restarts: list[int]) -> bytes:
        for r in restarts:
            block += struct.pack("<I", r)
        block += struct.pack("<I", len(restarts))
        return bytes(block)

    def _write_raw_block(self, contents: bytes) -> BlockHandle:
        handle = BlockHandle(self._offset, len(contents))
        trailer_crc = mask_crc(crc32c(bytes([NO_COMPRESSION]), crc32c(contents)))
        self._f.write(contents)
        self._f.write(bytes([NO_COMPRESSION]) + struct.pack("<I", trailer_crc))
        self._offset += len(contents) + TRAILER_SIZE
        return handle

    def _flush_data_block(self) -> None:
        if not self._block:
            return
        contents = self._finish_block(self._block, self._restarts)
        handle = self._write_raw_block(contents)
        # The block's last key is a valid separator (>= its keys, < the next block's first).
        self._index.append((self._block_last_key, handle))
        self._block = bytearray()
        self._restarts = [0]
        self._counter = 0

    def finish(self) -> None:
        self._flush_data_block()
        metaindex = self._write_raw_block(self._finish_block(bytearray(), [0]))
        index_block = bytearray()
        restarts = []
        for key, handle in self._index:  # restart interval 1 for the index block
            restarts.append(len(index_block))
            value = handle.encode()
            index_block += encode_varint(0) + encode_varint(len(key)) + encode_varint(len(value))
            index_block += key + value
        index_handle = self._write_raw_block(self._finish_block(index_block, restarts or [0]))
        footer = metaindex.encode() + index_handle.encode()
        footer += b"\0" * (40 - len(footer))
        footer += struct.pack("<II", MAGIC & 0xFFFFFFFF, MAGIC >> 32)
        self._f.write(footer)
        self._offset += len(footer)
