"""The default scan policy: which TensorFlow ops reach outside the process, and why.

One table, ``OPS``, classifies every op of TensorFlow's registry whose name or arguments
suggest input/output (files, readers, writers, datasets that take file names, RPC, summaries,
debug ops, Python calls; tests/test_scan.py checks the table against ``tf.raw_ops``) plus a few
older ops the registry no longer has. Each entry names a *capability* and says in one line why;
entries with capability ``none`` are classified as harmless (a summary op that only builds a
protobuf in memory, a reader's bookkeeping). Ops not in the table are pure computation; an
unclassified op whose name looks like I/O (a custom op) is still reported (``UNCLASSIFIED``).

``path`` names where an entry's file name / URL comes from: input positions (int, as in the
op's registry signature) or attribute names (str). The scanner traces those to a constant, an
input of the graph or an asset, and ``benign`` (a regex over the constant values) or ``urls``
(the value's scheme decides) refine the verdict.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# capability -> what an op of it does ("a graph op that ..."; SARIF rule descriptions, docs)
CAPABILITIES: dict[str, str] = {
    "python": "runs Python code of the loading process",
    "process": "ends the loading process",
    "file-write": "writes or deletes files",
    "file-read": "reads files",
    "file-system": "lists directories or reconfigures file systems",
    "checkpoint": "saves, restores or merges checkpoint files outside the model's own saver",
    "network": "connects to other machines",
    "graph": "runs a GraphDef given as data",
    "debug": "exports tensors to a debugger",
    "log": "prints tensor values to the process's log",
    "denied": "is on the policy's deny list",
    "unclassified": "is unknown to tfckpt's op table and named like input/output",
    "none": "stays inside the process's memory",
}
SEVERITIES = ("high", "medium", "low")


@dataclass(frozen=True)
class OpRule:
    capability: str
    reason: str
    severity: str = "high"
    path: tuple[int | str, ...] = ()  # inputs (position) / attributes (name) naming a file/URL
    benign: str | None = None  # regex: harmless when every constant value of ``path`` matches
    urls: bool = False  # ``path`` holds URLs: file:// writes files, other schemes reach out

    @property
    def reported(self) -> bool:
        return self.capability != "none"


def _rule(capability: str, default_severity: str = "high") -> Callable[..., OpRule]:
    """A constructor for entries of one capability (keeps the table one line per op)."""

    def make(
        reason: str,
        path: tuple[int | str, ...] = (),
        severity: str = default_severity,
        benign: str | None = None,
        urls: bool = False,
    ) -> OpRule:
        return OpRule(capability, reason, severity, path, benign, urls)

    return make


_read = _rule("file-read")
_write = _rule("file-write")
_fs = _rule("file-system", "medium")
_ckpt = _rule("checkpoint")
_net = _rule("network")
_py = _rule("python")
_none = _rule("none", "none")
_debug = _rule("debug", "low")

_FILE_DATASET = "a dataset reading the files named by its input"
_READER = "a queue-based reader that reads the files its queue names"
_SUMMARY_PROTO = "builds a Summary protobuf in memory; writing it needs a summary writer op"
_SUMMARY_WRITE = "writes an event through a summary writer (files in its log directory)"
_READER_STATE = "bookkeeping of a reader resource; creating the reader is what is reported"
_DEBUG_URLS = "sends tensor values to the debug URLs of its attribute (file:// writes files)"

OPS: dict[str, OpRule] = {
    # ---- Python and the process ----
    "PyFunc": _py("calls a Python function registered in the loading process (tf.numpy_function)"),
    "PyFuncStateless": _py("calls a Python function registered in the loading process"),
    "EagerPyFunc": _py("calls a Python function in the loading process (tf.py_function)"),
    "Abort": OpRule("process", "terminates the process that runs it", "high"),
    # ---- files ----
    "ReadFile": _read("reads the whole file named by its input", (0,)),
    "WriteFile": _write("writes its input to the file named by its input", (0,)),
    "MatchingFiles": _fs("lists the files matching a glob pattern", (0,)),
    "FileSystemSetConfiguration": _rule("file-system")(
        "changes the configuration of a file system implementation"
    ),
    "ImmutableConst": _read(
        "memory-maps the file named by memory_region_name", ("memory_region_name",)
    ),
    "DecodeProtoV2": _read(
        "loads protobuf descriptors from the file named by descriptor_source",
        ("descriptor_source",),
        benign=r"^(local://|bytes://)",
    ),
    "DecodeProto": _read(
        "loads protobuf descriptors from the file named by descriptor_source",
        ("descriptor_source",),
        benign=r"^(local://|bytes://)",
    ),
    "EncodeProto": _read(
        "loads protobuf descriptors from the file named by descriptor_source",
        ("descriptor_source",),
        benign=r"^(local://|bytes://)",
    ),
    "InitializeTableFromTextFile": _read("fills a lookup table from a text file", (1,)),
    "InitializeTableFromTextFileV2": _read("fills a lookup table from a text file", (1,)),
    "FixedUnigramCandidateSampler": _read(
        "reads unigram counts from vocab_file", ("vocab_file",), benign=r"^$"
    ),
    "GenerateVocabRemapping": _read("reads two vocabulary files", (0, 1)),
    "LoadAndRemapMatrix": _ckpt("reads a tensor from the checkpoint named by ckpt_path", (0,)),
    "RecordInput": _read("reads the records of files matching file_pattern", ("file_pattern",)),
    # ---- checkpoints (allowed only as the SavedModel's own saver) ----
    "Save": _ckpt("writes tensors to a checkpoint file", (0,)),
    "SaveSlices": _ckpt("writes tensor slices to a checkpoint file", (0,)),
    "SaveV2": _ckpt("writes tensors to a checkpoint", (0,)),
    "Restore": _ckpt("reads tensors from checkpoint files", (0,)),
    "RestoreSlice": _ckpt("reads tensor slices from checkpoint files", (0,)),
    "RestoreV2": _ckpt("reads tensors from a checkpoint", (0,)),
    "MergeV2Checkpoints": _ckpt("merges checkpoint files and deletes the parts", (0, 1)),
    "ShardedFilename": _none("formats a shard file name (a string op)"),
    "ShardedFilespec": _none("formats a shard file pattern (a string op)"),
    # ---- queue-based readers ----
    "WholeFileReader": _read(_READER),
    "WholeFileReaderV2": _read(_READER),
    "TextLineReader": _read(_READER),
    "TextLineReaderV2": _read(_READER),
    "TFRecordReader": _read(_READER),
    "TFRecordReaderV2": _read(_READER),
    "FixedLengthRecordReader": _read(_READER),
    "FixedLengthRecordReaderV2": _read(_READER),
    "LMDBReader": _read(_READER),
    "IdentityReader": _none("a reader that returns its work units' names; reads no file"),
    "IdentityReaderV2": _none("a reader that returns its work units' names; reads no file"),
    "ReaderRead": _read("reads the next record of a reader's current file"),
    "ReaderReadV2": _read("reads the next record of a reader's current file"),
    "ReaderReadUpTo": _read("reads records of a reader's current file"),
    "ReaderReadUpToV2": _read("reads records of a reader's current file"),
    "ReaderRestoreState": _read("restores a reader's state, which names the file it reads"),
    "ReaderRestoreStateV2": _read("restores a reader's state, which names the file it reads"),
    "ReaderReset": _none(_READER_STATE),
    "ReaderResetV2": _none(_READER_STATE),
    "ReaderNumRecordsProduced": _none(_READER_STATE),
    "ReaderNumRecordsProducedV2": _none(_READER_STATE),
    "ReaderNumWorkUnitsCompleted": _none(_READER_STATE),
    "ReaderNumWorkUnitsCompletedV2": _none(_READER_STATE),
    "ReaderSerializeState": _none(_READER_STATE),
    "ReaderSerializeStateV2": _none(_READER_STATE),
    # ---- datasets over files ----
    "TextLineDataset": _read(_FILE_DATASET, (0,)),
    "TFRecordDataset": _read(_FILE_DATASET, (0,)),
    "TFRecordDatasetV2": _read(_FILE_DATASET, (0,)),
    "FixedLengthRecordDataset": _read(_FILE_DATASET, (0,)),
    "FixedLengthRecordDatasetV2": _read(_FILE_DATASET, (0,)),
    "CSVDataset": _read(_FILE_DATASET, (0,)),
    "CSVDatasetV2": _read(_FILE_DATASET, (0,)),
    "ExperimentalCSVDataset": _read(_FILE_DATASET, (0,)),
    "LMDBDataset": _read("reads the LMDB databases named by its input", (0,)),
    "ExperimentalLMDBDataset": _read("reads the LMDB databases named by its input", (0,)),
    "SqlDataset": _read("runs a query on the database file named by data_source_name", (1,)),
    "ExperimentalSqlDataset": _read(
        "runs a query on the database file named by data_source_name", (1,)
    ),
    "MatchingFilesDataset": _fs("lists the files matching glob patterns", (0,)),
    "ExperimentalMatchingFilesDataset": _fs("lists the files matching glob patterns", (0,)),
    "CacheDataset": _write(
        "caches elements in files under the filename prefix (empty: in memory)", (1,), benign="^$"
    ),
    "CacheDatasetV2": _write(
        "caches elements in files under the filename prefix (empty: in memory)", (1,), benign="^$"
    ),
    "DatasetToTFRecord": _write("writes a dataset to a TFRecord file", (1,)),
    "ExperimentalDatasetToTFRecord": _write("writes a dataset to a TFRecord file", (1,)),
    "SaveDataset": _write("writes a dataset to files under its path", (1,)),
    "SaveDatasetV2": _write("writes a dataset to files under its path", (1,)),
    "LoadDataset": _read("reads a dataset saved under its path", (0,)),
    "SnapshotDataset": _write("writes and reads dataset snapshots under its path", (1,)),
    "SnapshotDatasetV2": _write("writes and reads dataset snapshots under its path", (1,)),
    "SnapshotDatasetReader": _read("reads a dataset snapshot shard directory", (0,)),
    "SnapshotNestedDatasetReader": _read("reads the dataset snapshot files of its inputs"),
    "SnapshotChunkDataset": _read("reads a dataset snapshot chunk file", (0,)),
    "ListSnapshotChunksDataset": _read("lists the chunk files of a dataset snapshot", (0,)),
    "DistributedSave": _write(
        "has the tf.data service save a dataset to a directory", (1, 2), severity="high"
    ),
    "TensorSliceDataset": _none("elements from in-memory tensors (is_files only marks them)"),
    "SetStatsAggregatorDataset": _none("attaches an in-memory statistics aggregator"),
    "ExperimentalSetStatsAggregatorDataset": _none("attaches an in-memory statistics aggregator"),
    "DatasetFromGraph": OpRule(
        "graph", "runs the dataset of a serialized GraphDef given as its input", "high", (0,)
    ),
    # ---- network ----
    "Rpc": _net("calls an RPC server (removed from TensorFlow 2.x; older graphs)", (0,)),
    "TryRpc": _net("calls an RPC server (removed from TensorFlow 2.x; older graphs)", (0,)),
    "DataServiceDataset": _net("reads elements from a tf.data service at its address", (2,)),
    "DataServiceDatasetV2": _net("reads elements from a tf.data service at its address", (2,)),
    "DataServiceDatasetV3": _net("reads elements from a tf.data service at its address", (2,)),
    "DataServiceDatasetV4": _net("reads elements from a tf.data service at its address", (2,)),
    "RegisterDataset": _net("sends a dataset definition to a tf.data service", (1,)),
    "RegisterDatasetV2": _net("sends a dataset definition to a tf.data service", (1,)),
    "RemoteCall": _net("runs a function on another (possibly remote) device", (0,)),
    "Send": _net("sends a tensor to another device or task", severity="medium"),
    "Recv": _net("receives a tensor from another device or task", severity="medium"),
    "_Send": _net("sends a tensor to another device or task", severity="medium"),
    "_Recv": _net("receives a tensor from another device or task", severity="medium"),
    "_HostSend": _net("sends a tensor to another device or task", severity="medium"),
    "_HostRecv": _net("receives a tensor from another device or task", severity="medium"),
    # ---- summaries: building protos is harmless, writers write files ----
    "SummaryWriter": _write("a summary writer resource, which writes event files"),
    "CreateSummaryFileWriter": _write("opens event files under a log directory", (1,)),
    "CreateSummaryDbWriter": _write("opens a summary database at db_uri", (1,)),
    "WriteSummary": _write(_SUMMARY_WRITE, severity="medium"),
    "WriteScalarSummary": _write(_SUMMARY_WRITE, severity="medium"),
    "WriteHistogramSummary": _write(_SUMMARY_WRITE, severity="medium"),
    "WriteImageSummary": _write(_SUMMARY_WRITE, severity="medium"),
    "WriteAudioSummary": _write(_SUMMARY_WRITE, severity="medium"),
    "WriteGraphSummary": _write(_SUMMARY_WRITE, severity="medium"),
    "WriteRawProtoSummary": _write(_SUMMARY_WRITE, severity="medium"),
    "ImportEvent": _write(_SUMMARY_WRITE, severity="medium"),
    "FlushSummaryWriter": _write("flushes a summary writer's event file", severity="medium"),
    "CloseSummaryWriter": _write("closes a summary writer's event file", severity="medium"),
    "StatsAggregatorSetSummaryWriter": _write(
        "sends dataset statistics to a summary writer", severity="medium"
    ),
    "ScalarSummary": _none(_SUMMARY_PROTO),
    "HistogramSummary": _none(_SUMMARY_PROTO),
    "ImageSummary": _none(_SUMMARY_PROTO),
    "AudioSummary": _none(_SUMMARY_PROTO),
    "AudioSummaryV2": _none(_SUMMARY_PROTO),
    "TensorSummary": _none(_SUMMARY_PROTO),
    "TensorSummaryV2": _none(_SUMMARY_PROTO),
    "MergeSummary": _none("merges Summary protobufs in memory"),
    "StatsAggregatorSummary": _none(_SUMMARY_PROTO),
    "ExperimentalStatsAggregatorSummary": _none(_SUMMARY_PROTO),
    "BoostedTreesMakeStatsSummary": _none("boosted-trees statistics in memory (not a Summary)"),
    # ---- logging and debugging ----
    "PrintV2": OpRule(
        "log",
        "prints tensor values to output_stream (stderr, a log level, or file:// a file)",
        "low",
        ("output_stream",),
        urls=True,
    ),
    "Print": OpRule("log", "prints tensor values to the process's stderr", "low"),
    "DebugIdentity": _debug(_DEBUG_URLS, ("debug_urls",), urls=True),
    "DebugIdentityV2": _debug(_DEBUG_URLS, ("debug_urls",), urls=True),
    "DebugIdentityV3": _debug(_DEBUG_URLS, ("debug_urls",), urls=True),
    "DebugNanCount": _debug(_DEBUG_URLS, ("debug_urls",), urls=True),
    "DebugNumericSummary": _debug(_DEBUG_URLS, ("debug_urls",), urls=True),
    "DebugNumericSummaryV2": _none("computes tensor statistics in memory (no debug URLs)"),
    "DebugGradientIdentity": _none("marks a gradient for the debugger; no output of its own"),
    "DebugGradientRefIdentity": _none("marks a gradient for the debugger; no output of its own"),
    "Copy": _debug(
        "a debugger copy that runs the debug ops of debug_ops_spec (their URLs)",
        ("debug_ops_spec",),
        benign="^$",
        urls=True,
    ),
    "CopyHost": _debug(
        "a debugger copy that runs the debug ops of debug_ops_spec (their URLs)",
        ("debug_ops_spec",),
        benign="^$",
        urls=True,
    ),
    # ---- names that look like I/O but are not ----
    "Snapshot": _none("copies a tensor (an identity op; not a dataset snapshot)"),
    "RegexFullMatch": _none("matches strings against a regex (pattern is not a file)"),
    "RegexReplace": _none("rewrites strings with a regex (pattern is not a file)"),
    "StaticRegexFullMatch": _none("matches strings against a regex (pattern is not a file)"),
    "StaticRegexReplace": _none("rewrites strings with a regex (pattern is not a file)"),
}

# Ops whose name suggests input/output: reported when they are not in OPS (a custom op, an op
# newer than this table), so the default policy denies what it does not know.
IO_NAME_RE = re.compile(
    r"File|Reader|Writer|Rpc|Summary|^Debug|PyFunc|Save|Restore|Checkpoint|Snapshot|Socket"
    r"|Http|Url|Sql|LMDB|Mmap|Shell|Exec|Python|Remote"
)

UNCLASSIFIED = OpRule(
    "unclassified",
    "not in tfckpt's op table, and its name suggests I/O (a custom or newer op)",
    "medium",
)


def classify(op: str) -> OpRule | None:
    """The rule for ``op``: its table entry, ``UNCLASSIFIED`` for an unknown op named like
    I/O, or None (pure computation)."""
    rule = OPS.get(op)
    if rule is not None:
        return rule
    if IO_NAME_RE.search(op):
        return UNCLASSIFIED
    return None


_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def url_capability(value: str, default: str) -> str:
    """What a debug/print URL does: ``file://`` writes files, another scheme (``grpc://``)
    connects out, anything else (``stderr``, ``log(info)``) keeps ``default``. A debugger
    copy's spec (``DebugIdentity;file:///tmp/d;0``) is searched for its URL."""
    schemes = {m.group(1).lower() for m in _SCHEME_RE.finditer(value)}
    if "file" in schemes or value.strip().startswith("/"):
        return "file-write"
    if schemes:
        return "network"
    return default


__all__ = [
    "CAPABILITIES",
    "IO_NAME_RE",
    "OPS",
    "SEVERITIES",
    "UNCLASSIFIED",
    "OpRule",
    "classify",
    "url_capability",
]
