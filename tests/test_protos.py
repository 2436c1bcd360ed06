"""tfckpt's own proto declarations: the generated descriptors are current and match FORMAT.md."""

from __future__ import annotations

from pathlib import Path

from tfckpt import _protogen, protos


def test_generated_descriptors_are_current() -> None:
    from tfckpt import _descriptors

    current = Path(_descriptors.__file__).read_text(encoding="utf-8")
    assert current == _protogen.render(), "run: python -m tfckpt._protogen"


def test_header_serializes_as_format_doc_says() -> None:
    header = protos.BundleHeaderProto(num_shards=1)
    header.version.producer = 1
    assert header.SerializeToString() == bytes.fromhex("08011a020801")
    entry = protos.BundleEntryProto()
    entry.shape.SetInParent()
    assert entry.SerializeToString() == b"\x12\x00"
    entry.crc32c = 5
    assert b"\x35\x05\x00\x00\x00" in entry.SerializeToString()  # fixed32, tag 0x35


def test_slice_extent_length_is_optional() -> None:
    s = protos.TensorSliceProto()
    full = s.extent.add()
    part = s.extent.add(start=2, length=3)
    assert not full.HasField("length") and part.HasField("length")
