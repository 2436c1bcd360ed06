"""Runs hostile cases against every command and checks the contract; also a worker process.

The contract, per command and case: exit code 0, 1 or 2; no exception other than the CLI's own
exit; stderr holds at most one ``tfckpt: error:`` line (plus ``tfckpt:`` notes), never a
traceback; no command runs longer than the deadline or allocates more than the address-space
limit of the worker. Writers (``rename``/``prune``/``merge``) must leave the source byte-identical
and the destination either absent (no files at all, no temp files) or a readable checkpoint.

Commands run in-process through ``typer.testing.CliRunner`` for speed, inside worker processes
started with ``RLIMIT_AS``; a worker that dies is replaced and the case that killed it recorded.

Targets are a registry (``TARGETS``): add a command by registering how to build its argv.

Reproduce one case:  python tests/fuzz_harness.py --replay N [--master M] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from fuzz_inputs import Case, Seed, collect_seeds, make_case, snapshot, write_case  # noqa: E402

# Address space a worker may use: the CLI with numpy and protobuf maps ~300 MB; the seeds are
# under 400 KB, so any allocation anywhere near the rest is a bound that failed.
WORKER_MEMORY = 1 << 30
# A single command on a tiny hostile input finishes in milliseconds; this is a hang.
DEADLINE_SECONDS = 20.0
MAX_ERROR_LINE = 4096


@dataclass
class Env:
    """Where one case lives: ``root/case`` (the hostile files), ``root/out`` (writers' output)."""

    case_dir: Path
    out_dir: Path
    pristine: Path  # an intact copy of the case's seed (the other side of diff / merge)
    case: Case
    names: list[str]  # tensor names of the intact seed (for --show)

    @property
    def path(self) -> str:
        return str(self.case_dir / self.case.path)

    @property
    def pristine_path(self) -> str:
        return str(self.pristine / self.case.path) if self.case.path else str(self.pristine)


@dataclass(frozen=True)
class Target:
    name: str
    argv: Callable[[Env], list[str] | None]  # None: not applicable to this case
    writes: bool = False


TARGETS: dict[str, Target] = {}


def register(
    name: str,
    argv: Callable[[Env], list[str] | None],
    writes: bool = False,
    graphs_only: bool = False,
) -> None:
    """Add a command to fuzz. Checkpoint commands skip cases that are only a graph file."""

    def build(env: Env) -> list[str] | None:
        if env.case.kind == "graph" and not graphs_only:
            return None
        return argv(env)

    TARGETS[name] = Target(name, build, writes)


def _dst(env: Env) -> str:
    return str(env.out_dir / "dst" / "model.ckpt-1")


def _json(env: Env) -> list[str]:
    """Odd cases render JSON, even ones tables: both renderers meet every kind of input."""
    return ["--json"] if env.case.number % 2 else []


register("ls", lambda env: ["ls", str(env.case_dir), "-R", *_json(env)])
register("vars", lambda env: ["vars", env.path, *_json(env)])
register("vars-stats", lambda env: ["vars", env.path, "--stats", "--all", "--tree", *_json(env)])
register(
    "diff",
    lambda env: [
        "diff",
        env.path,
        env.pristine_path if env.case.number % 4 < 2 else env.path,
        "--object-graph",
        *_json(env),
    ],
)
register(
    "vars-show",
    lambda env: (
        ["vars", env.path, "--show", env.names[env.case.number % len(env.names)], "--full"]
        if env.names
        else None
    ),
)
register(
    "verify",
    lambda env: [
        "verify",
        env.path,
        *(["--no-nan", "--max-abs", "1e30"] if env.case.number % 3 == 0 else []),
        *_json(env),
    ],
)
register(
    "rename",
    lambda env: [
        "rename",
        env.path,
        _dst(env),
        *(["--add-prefix", "r/"] if env.case.number % 2 else ["--sub", "a", "b", "-q"]),
    ],
    writes=True,
)
register(
    "rename-meta",
    # Cases whose checkpoint has a .meta (Estimator graphs with control-flow collections among
    # the seeds): the graph is renamed too, through every collection's registered type.
    lambda env: (
        ["rename", env.path, _dst(env), "--add-prefix", "r/", "--meta", "-q"]
        if env.case.graph_path and env.case.graph_path.endswith(".meta") and env.case.kind == "V2"
        else None
    ),
    writes=True,
)
register(
    "prune",
    lambda env: ["prune", env.path, _dst(env), "--drop", "^[ab]", "--no-optimizer", "-q"],
    writes=True,
)
register(
    "merge",
    lambda env: ["merge", env.path, f"{env.pristine_path}:p/", "-q", "-o", _dst(env)],
    writes=True,
)


def available_commands() -> set[str]:
    import typer.main

    from tfckpt.cli import app

    return set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


# ---- graph / convert-pbtxt -------------------------------------------------------------------
# Registered when the commands exist (they were written alongside this suite). Cases carry a
# graph file when their seed has one (a .meta, saved_model.pb, a GraphDef .pb/.pbtxt); checkpoint
# cases without one give graph their checkpoint path (graph then looks for the .meta).
def _graph(env: Env) -> str:
    return str(env.case_dir / env.case.graph_path) if env.case.graph_path else env.path


def _graph_argv(env: Env) -> list[str]:
    extra = [["--nodes"], ["--json"], ["--format", "dot"], []][env.case.number % 4]
    if env.case.kind != "graph" and env.case.number % 3 == 0:
        extra = [*extra, "--check", env.path]  # the graph against the (hostile) checkpoint
    return ["graph", _graph(env), *extra]


def _convert_argv(env: Env) -> list[str]:
    source = _graph(env)
    text = source.endswith((".pbtxt", ".txt"))
    return ["convert-pbtxt", source, str(env.out_dir / "dst" / ("g.pb" if text else "g.pbtxt"))]


_COMMANDS = available_commands()
# Other readers of checkpoints that write: export (safetensors / npz) and cast.
if "export" in _COMMANDS:
    register(
        "export",
        lambda env: [
            "export",
            env.path,
            str(env.out_dir / "dst" / ("x.npz" if env.case.number % 2 else "x.safetensors")),
            "-q",
        ],
        writes=True,
    )
if "cast" in _COMMANDS:
    register(
        "cast", lambda env: ["cast", env.path, _dst(env), "--dtype", "float16", "-q"], writes=True
    )
if "graph" in _COMMANDS:
    register("graph", _graph_argv, graphs_only=True)
if "convert-pbtxt" in _COMMANDS:
    register("convert-pbtxt", _convert_argv, writes=True, graphs_only=True)


# ---- scan / check --policy --------------------------------------------------------------------
# scan reads the same graphs as graph (every meta graph, functions, nested GraphDefs); check runs
# every policy rule on the case (the checkpoint's values, the graph's ops and signatures). Their
# SARIF goes beside the case directory, so writers still see an empty out/.
_POLICY = """
finite = true
max_bytes = "1 GiB"
max_parameters = 100_000_000
dtypes = ["float32", "int64"]
no_optimizer_state = true
tensorflow_version = ">=1"
deny_ops = ["Debug*"]
[signatures.serving_default]
inputs.x = { dtype = "float32", shape = [-1, 3] }
"""


def _scan_argv(env: Env) -> list[str]:
    extra = ["--sarif", str(env.out_dir.parent / "scan.sarif"), "--force"]
    return ["scan", _graph(env), *(extra if env.case.number % 3 == 0 else []), *_json(env)]


def _check_argv(env: Env) -> list[str]:
    policy = env.out_dir.parent / "policy.toml"
    if not policy.exists():
        policy.write_text(_POLICY)
    target = _graph(env) if env.case.kind == "graph" else env.path
    return ["check", "--policy", str(policy), target, *_json(env)]


if "scan" in _COMMANDS:
    register("scan", _scan_argv, graphs_only=True)
if "check" in _COMMANDS:
    register("check", _check_argv, graphs_only=True)


# ---- guards -----------------------------------------------------------------------------------
class Deadline(BaseException):
    """A command ran past the deadline."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise Deadline(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def limit_memory(limit: int = WORKER_MEMORY) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _vm_size() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@contextmanager
def memory_guard(extra: int) -> Iterator[None]:
    """In-process: at most ``extra`` more bytes of address space until the block ends (the soft
    limit goes back up afterwards). A no-op where /proc is unavailable."""
    current = _vm_size()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if current is None:
        yield
        return
    limit = current + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# ---- checks -----------------------------------------------------------------------------------
KNOWN = "known elsewhere: "
# Bugs found by this suite in modules another engineer owns, reported to them with reproducers:
# (module path, function, exception type) of the innermost tfckpt frame. They are counted and
# printed as "known elsewhere", not failed on; delete an entry once its fix lands.
KNOWN_ELSEWHERE: set[tuple[str, str, str]] = set()


def known_hang(name: str, argv: list[str], case_dir: Path) -> str | None:
    """Runs known to block (reported to the module's owner): skipped rather than waited on.
    None are known now; the hook stays for the next report."""
    del name, argv, case_dir
    return None


def innermost_frame(exc: BaseException) -> tuple[str, str]:
    """(path relative to the repository, function) of the deepest frame inside tfckpt/."""
    where = ("", "")
    for frame in traceback.extract_tb(exc.__traceback__):
        path = frame.filename.replace(os.sep, "/")
        if "/tfckpt/" in path:
            where = ("tfckpt/" + path.rsplit("/tfckpt/", 1)[1], frame.name)
    return where


def check_result(name: str, argv: list[str], result: Any) -> str | None:
    """The contract for one command run; a message on violation."""
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        message = f"{name}: uncaught {type(exc).__name__}: {exc}\n{tb[-3000:]}"
        if (*innermost_frame(exc), type(exc).__name__) in KNOWN_ELSEWHERE:
            return KNOWN + message
        return message
    if result.exit_code not in (0, 1, 2):
        return f"{name}: exit code {result.exit_code}; stderr: {result.stderr[-500:]!r}"
    stderr = result.stderr
    if "Traceback" in stderr:
        return f"{name}: traceback on stderr: {stderr[-2000:]}"
    # Lines end at "\n" only: str.splitlines() also splits at form feeds and other control
    # characters, which hostile names can carry into a (still one-line) message.
    lines = stderr.rstrip("\n").split("\n") if stderr else []
    errors = [line for line in lines if line.startswith("tfckpt: error:")]
    if len(errors) > 1:
        return f"{name}: {len(errors)} error lines: {errors[:3]!r}"
    strays = [line for line in lines if not line.startswith("tfckpt: ")]
    if strays and result.exit_code == 2:
        return f"{name}: stderr lines that are not tfckpt messages: {strays[:3]!r}"
    if result.exit_code == 2 and not errors:
        return f"{name}: exit 2 without an error message; stderr {stderr[-300:]!r}"
    if any(len(line) > MAX_ERROR_LINE for line in errors):
        return f"{name}: error line of {max(map(len, errors))} characters"
    return None


def check_destination(name: str, env: Env, exit_code: int) -> str | None:
    """Writers: absent (nothing at all) or a readable checkpoint with no temp files around it."""
    files = sorted(str(p.relative_to(env.out_dir)) for p in env.out_dir.rglob("*") if p.is_file())
    temps = [f for f in files if ".tfckpt-tmp-" in f]
    if temps:
        return f"{name}: temp files left behind: {temps}"
    if exit_code != 0:
        if files:
            return f"{name}: failed (exit {exit_code}) but left files: {files}"
        return None
    if name.startswith(("convert", "export")):
        return None if len(files) == 1 else f"{name}: exit 0 but output files {files}"
    if "dst/model.ckpt-1.index" not in files:
        return f"{name}: exit 0 but no index: {files}"
    from tfckpt.bundle.reader import BundleReader
    from tfckpt.errors import TfckptError

    try:
        reader = BundleReader(_dst(env))
        for i in range(reader.num_shards):
            if not os.path.isfile(reader.data_path(i)):
                return f"{name}: output index names shard {i}, which is missing"
        reader.close()
    except TfckptError as exc:
        return f"{name}: output index unreadable: {exc}"
    return None


# Reasons a checkpoint that verifies may still not be decodable: not corruption.
_UNSUPPORTED = ("cannot decode", "opaque", "not supported", "no variable named")


# Damage found by ``verify`` in bytes that ``rename`` copies (it copies every tensor).
_DAMAGE = ("crc", "range", "size", "shard")


def check_consistency(results: dict[str, tuple[list[str], int, str, str]]) -> list[str]:
    """A checkpoint that ``verify`` passes (no value checks) is readable by every reader:
    verify must not miss what makes another command call it corrupt. And the converse for
    writers: ``rename`` copies every tensor, so it must not succeed on a checkpoint in which
    verify found damaged tensor bytes."""
    verify = results.get("verify")
    if verify is None:
        return []
    out = []
    if verify[1] == 1 and "--json" in verify[0]:
        damage = [p for p in json.loads(verify[3])["problems"] if p["check"] in _DAMAGE]
        for name in ("rename", "rename-meta"):
            if damage and results.get(name, ([], 2))[1] == 0:
                out.append(
                    f"verify found {damage[0]['check']} damage ({damage[0]['message'][:300]}), "
                    f"but {name} copied it and exited 0; argv {results[name][0]}"
                )
    if verify[1] != 0 or "--no-nan" in verify[0]:
        return out
    for name in ("vars", "vars-stats", "vars-show", "diff"):
        if name not in results:
            continue
        argv, code, stderr, _ = results[name]
        if code == 2 and not any(reason in stderr for reason in _UNSUPPORTED):
            out.append(f"verify passed, but {name} failed: {stderr.strip()[-400:]}; argv {argv}")
    return out


# ---- running cases ----------------------------------------------------------------------------
class Fuzzer:
    """Holds the seeds and a scratch directory; runs cases one by one."""

    def __init__(self, seeds: list[Seed], scratch: Path, deadline_s: float = DEADLINE_SECONDS):
        from typer.testing import CliRunner

        self.seeds = seeds
        self.by_name = {s.name: s for s in seeds}
        self.scratch = scratch
        self.deadline_s = deadline_s
        import typer.testing

        self.runner = CliRunner()
        # Building the Click command from the Typer app costs more than most cases, and
        # CliRunner.invoke rebuilds it on every call: build it once.
        command = typer.testing._get_command(self._app())
        typer.testing._get_command = lambda app: command  # type: ignore[attr-defined]
        self.pristine_root = scratch / "pristine"
        self.names: dict[str, list[str]] = {}
        for seed in seeds:
            root = self.pristine_root / _safe(seed.name)
            if not root.exists():
                write_case(dict(seed.files), root)
            self.names[seed.name] = _tensor_names(root / seed.path)

    @staticmethod
    def _app() -> Any:
        from tfckpt.cli import app

        return app

    def run(self, case: Case, targets: list[str] | None = None) -> list[str]:
        case_dir = self.scratch / "case"
        out_dir = self.scratch / "out"
        for d in (case_dir, out_dir):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        (out_dir / "dst").mkdir()
        write_case(case.files, case_dir)
        env = Env(
            case_dir, out_dir, self.pristine_root / _safe(case.seed), case, self.names[case.seed]
        )
        before = snapshot(case_dir)
        failures = []
        results: dict[str, tuple[list[str], int, str, str]] = {}
        if targets is None and os.environ.get("TFCKPT_FUZZ_TARGETS"):
            targets = os.environ["TFCKPT_FUZZ_TARGETS"].split(",")
        for target in TARGETS.values():
            if targets is not None and target.name not in targets:
                continue
            argv = target.argv(env)
            if argv is None:
                continue
            hang = known_hang(target.name, argv, case_dir)
            if hang is not None:
                failures.append(f"{KNOWN}{target.name}: not run: {hang}")
                continue
            if target.writes:
                shutil.rmtree(out_dir / "dst", ignore_errors=True)
                (out_dir / "dst").mkdir()
            started = time.monotonic()
            try:
                with deadline(self.deadline_s):
                    result = self.runner.invoke(self._app(), argv)
            except Deadline as exc:
                failures.append(f"{target.name}: hang ({exc}); argv {argv}")
                continue
            results[target.name] = (argv, result.exit_code, result.stderr, result.stdout)
            problem = check_result(target.name, argv, result)
            if problem is None and target.writes:
                problem = check_destination(target.name, env, result.exit_code)
            if problem is None and time.monotonic() - started > self.deadline_s / 2:
                problem = f"{target.name}: slow ({time.monotonic() - started:.1f} s)"
            if problem is not None:
                failures.append(problem)
        failures += check_consistency(results)
        after = snapshot(case_dir)
        if after != before:
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            failures.append(f"the source directory changed: {changed}")
        return failures


def _tensor_names(path: Path) -> list[str]:
    from tfckpt.bundle.checkpoint import open_checkpoint
    from tfckpt.errors import TfckptError

    try:
        with open_checkpoint(path) as ckpt:
            return [i.name for i in ckpt.tensors()]
    except TfckptError:
        return []


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# ---- worker process ---------------------------------------------------------------------------
def worker_main(args: argparse.Namespace) -> int:
    """Run cases ``start, start+step, ...`` below ``stop``; one JSON line per failure."""
    limit_memory(args.memory)
    scratch = Path(args.scratch)
    corpus = [Path(p) for p in args.corpus] if args.corpus else []
    graphs = [Path(p) for p in args.graph] if args.graph else []
    seeds = collect_seeds(
        Path(args.fixtures) if args.fixtures else None, corpus, scratch / "seeds", graphs
    )
    fuzzer = Fuzzer(seeds, scratch / "w", args.deadline)
    progress = Path(args.progress) if args.progress else None
    ran = 0
    parent = os.getppid()
    for number in range(args.start, args.stop, args.step):
        if os.getppid() != parent:
            return 3  # the run was interrupted: do not go on alone
        if progress is not None:
            progress.write_text(str(number))
        case = make_case(number, args.master, seeds)
        failures = fuzzer.run(case)
        ran += 1
        for failure in failures:
            print(json.dumps({"case": number, "desc": case.describe(), "failure": failure}))
            sys.stdout.flush()
    print(json.dumps({"done": ran}))
    return 0


@dataclass
class RunReport:
    cases: int
    failures: list[dict[str, Any]]
    seconds: float
    seeds: int = 0

    @property
    def real_failures(self) -> list[dict[str, Any]]:
        return [f for f in self.failures if not f["failure"].startswith(KNOWN)]

    @property
    def known(self) -> list[dict[str, Any]]:
        return [f for f in self.failures if f["failure"].startswith(KNOWN)]

    def summary(self) -> str:
        failed_cases = len({f["case"] for f in self.real_failures})
        known = len({f["case"] for f in self.known})
        text = f"fuzz: {self.cases} cases run, {failed_cases} failed"
        if known:
            text += f" (+{known} with known bugs in modules owned elsewhere)"
        return text + f", in {self.seconds:.0f} s"


@dataclass
class Inputs:
    """Where seeds come from: the TF-made fixtures, corpus checkpoints, graph files."""

    fixtures: Path | None
    corpus: list[Path]
    graphs: list[Path]

    def args(self) -> list[str]:
        return [
            *([f"--fixtures={self.fixtures}"] if self.fixtures else []),
            *[f"--corpus={c}" for c in self.corpus],
            *[f"--graph={g}" for g in self.graphs],
        ]

    def seeds(self, workdir: Path) -> list[Seed]:
        return collect_seeds(self.fixtures, self.corpus, workdir, self.graphs)


def default_inputs(fixtures: Path | None) -> Inputs:
    """``fixtures`` (None without TensorFlow) plus the corpus (skipped when absent)."""
    from fixtures import corpus_checkpoints, corpus_graphs

    graphs = [g for g in corpus_graphs() if g.stat().st_size < 100_000]
    return Inputs(fixtures, corpus_checkpoints(), graphs)


def run_cases(
    count: int,
    master: int,
    inputs: Inputs,
    workers: int = 1,
    memory: int = WORKER_MEMORY,
    deadline_s: float = DEADLINE_SECONDS,
    first: int = 0,
) -> RunReport:
    """Run cases ``first .. first+count-1`` in ``workers`` processes; restart any that dies."""
    started = time.monotonic()
    failures: list[dict[str, Any]] = []
    ran = 0
    with tempfile.TemporaryDirectory(prefix="tfckpt-fuzz-") as tmp:
        procs = []
        for w in range(workers):
            procs.append(_Worker(Path(tmp) / f"w{w}", first + w, first + count, workers))
        for proc in procs:
            proc.extra = [
                f"--master={master}",
                f"--memory={memory}",
                f"--deadline={deadline_s}",
                *inputs.args(),
            ]
            proc.launch()
        while procs:
            for proc in list(procs):
                if proc.poll():
                    ran += proc.ran
                    failures.extend(proc.failures)
                    if proc.finished:
                        procs.remove(proc)
                    else:
                        proc.launch()
            time.sleep(0.05)
    return RunReport(ran, failures, time.monotonic() - started)


class _Worker:
    """One worker subprocess over an arithmetic range of case numbers, relaunched on death."""

    def __init__(self, scratch: Path, start: int, stop: int, step: int) -> None:
        self.scratch = scratch
        self.next = start
        self.stop = stop
        self.step = step
        self.extra: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.ran = 0
        self.failures: list[dict[str, Any]] = []
        self.finished = start >= stop
        self._out: Any = None
        self._launched = time.time()
        self.hang_seconds = 3 * DEADLINE_SECONDS * len(TARGETS) + 120

    def launch(self) -> None:
        if self.finished:
            return
        self.scratch.mkdir(parents=True, exist_ok=True)
        (self.scratch / "progress").unlink(missing_ok=True)
        self.ran = 0
        self.failures = []
        self._out = open(self.scratch / "out.jsonl", "w+")  # noqa: SIM115
        self._launched = time.time()
        cmd = [
            sys.executable,
            str(Path(__file__)),
            "--worker",
            f"--start={self.next}",
            f"--stop={self.stop}",
            f"--step={self.step}",
            f"--scratch={self.scratch}",
            f"--progress={self.scratch / 'progress'}",
            *self.extra,
        ]
        env = dict(os.environ, PYTHONHASHSEED="0", COLUMNS="120", TFCKPT_DEBUG="1")
        env.pop("TFCKPT_FUZZ_CASES", None)
        self.proc = subprocess.Popen(
            cmd, stdout=self._out, stderr=subprocess.PIPE, text=True, env=env
        )

    def poll(self) -> bool:
        """True when the process ended (results collected into ran/failures)."""
        if self.proc is None or self.finished:
            return self.finished
        if self.proc.poll() is None:
            progress = self.scratch / "progress"
            mark = progress.stat().st_mtime if progress.exists() else self._launched
            if time.time() - mark > self.hang_seconds:
                self.proc.kill()  # stuck where the in-process deadline cannot reach
                self.proc.wait()
            else:
                return False
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        self._out.seek(0)
        done = None
        for line in self._out.read().splitlines():
            record = json.loads(line)
            if "done" in record:
                done = record["done"]
            else:
                self.failures.append(record)
        self._out.close()
        if done is not None:
            self.ran = done
            self.finished = True
            return True
        # The worker died: blame the case it was running and go on after it.
        progress = self.scratch / "progress"
        if not progress.exists():
            raise RuntimeError(f"fuzz worker failed to start: {stderr[-3000:]}")
        current = int(progress.read_text()) if progress.exists() else self.next
        self.ran = (current - self.next) // self.step + 1
        self.failures.append(
            {
                "case": current,
                "desc": f"case {current}",
                "failure": f"worker died (exit {self.proc.returncode}): {stderr[-2000:]}",
            }
        )
        self.next = current + self.step
        self.finished = self.next >= self.stop
        return True


def replay(number: int, master: int, inputs: Inputs, keep: Path | None) -> list[str]:
    """Run one case in this process and print what it did."""
    scratch = keep or Path(tempfile.mkdtemp(prefix="tfckpt-replay-"))
    seeds = inputs.seeds(scratch / "seeds")
    case = make_case(number, master, seeds)
    print(case.describe())
    fuzzer = Fuzzer(seeds, scratch / "w")
    failures = fuzzer.run(case)
    print(f"case files in {scratch / 'w' / 'case'}")
    for f in failures:
        print("FAIL", f)
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--replay", type=int)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=100)
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--master", type=int, default=0)
    parser.add_argument("--memory", type=int, default=WORKER_MEMORY)
    parser.add_argument("--deadline", type=float, default=DEADLINE_SECONDS)
    parser.add_argument("--scratch", default=None)
    parser.add_argument("--progress", default=None)
    parser.add_argument("--fixtures", default=None)
    parser.add_argument("--corpus", action="append")
    parser.add_argument("--graph", action="append")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args)
    from fixtures import default_dir

    inputs = default_inputs(Path(args.fixtures) if args.fixtures else default_dir())
    if args.corpus:
        inputs.corpus = [Path(c) for c in args.corpus]
    if args.graph:
        inputs.graphs = [Path(g) for g in args.graph]
    if args.replay is not None:
        return 1 if replay(args.replay, args.master, inputs, args.keep) else 0
    report = run_cases(
        args.stop - args.start, args.master, inputs, args.workers, args.memory, args.deadline,
        args.start,
    )  # fmt: skip
    for f in report.failures:
        print(f"{f['desc']}\n  {f['failure']}")
    print(report.summary())
    return 1 if report.real_failures else 0


if __name__ == "__main__":
    sys.exit(main())
