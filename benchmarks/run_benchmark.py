"""Throughput and peak memory of each stage, of a whole ``capi-uploader run``, and of Meta's SDK.

    .venv/bin/python benchmarks/run_benchmark.py --rows 1000000

Generates (or reuses) a messy CRM export, then runs every measurement in a child process of its
own, one after the other, on the same rows: read, map/normalise/hash, validate, ledger write,
delivery to the sandbox (itself another process, ``capi-uploader sandbox``, over loopback), a
whole ``capi-uploader run`` against a fresh sandbox and ledger, and Meta's ``facebook-business``
SDK building the same events. Peak memory is the largest sum of the resident memory of each
child and its descendants (a run's mapping workers). Prints a markdown table and the ratios to the SDK, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Engine, create_engine, make_url

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate
import grown_ledger

from uploader.ledger.schema import metadata

TOKEN = "bench-token-0123456789"
DATASET = "1234567890123"
STAGES = ("read", "map", "validate", "map_workers", "ledger", "deliver", "sdk")
SQLITE_LEDGER = "sqlite:///state/ledger.db"  # relative to the config file
CONFIG = """\
[ledger]
url = "{ledger}"

[run]
chunk_size = {chunk_size}{map_workers}

[meta]
batch_size = 1000
concurrency = 4

[[sources]]
name = "crm"
type = "csv"
path = "drop"
default_country = "US"
timezone = "America/New_York"

[sources.stage_map]
"Closed Won" = "Purchase"
"Qualified" = "Lead"
"""
LABELS = {"read": "read CSV", "map": "map / normalise / hash", "validate": "validate",
          "map_workers": "map + validate in worker processes (`run.map_workers`)",
          "ledger": "ledger write (SQLite)", "deliver": "delivery to the sandbox",
          "run": "**whole `capi-uploader run`**", "sdk": "Meta SDK: build + normalise + JSON",
          "run_grown": "whole `capi-uploader run` into a grown ledger ({events:,} events)"}


@dataclass
class Measure:
    """One child process: what it did, how long, and its peak resident memory."""

    stage: str
    rows: int
    units: int
    seconds: float
    peak_mb: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--chunk-size", type=int, default=5_000)
    parser.add_argument("--map-workers", type=int, default=None,
                        help="run.map_workers for every stage and the run (default: the product's default)")
    parser.add_argument("--data", type=Path, default=HERE / "data", help="where generated CSVs are kept")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--stages", default=",".join(STAGES + ("run",)),
                        help="comma-separated subset of " + ", ".join(STAGES + ("run",)))
    parser.add_argument("--json", type=Path, default=HERE / "results.json", help="where to write the results")
    parser.add_argument("--ledger-url", default=None,
                        help="the whole run's ledger: a SQLAlchemy URL of a scratch database, whose ledger tables "
                             "are dropped first (default: a new SQLite file)")
    parser.add_argument("--ledger-events", type=int, default=0,
                        help="also time a whole run into a ledger already holding this many sent events "
                             "(grown_ledger.py; kept in --data)")
    return parser.parse_args(argv)


def data_file(args: argparse.Namespace) -> Path:
    """The CSV for these rows and seed; regenerated when missing or more than a day old (its
    times must stay inside Meta's 7-day window)."""
    path = args.data / f"crm-{args.rows}-{args.seed}.csv"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("rows") == args.rows and time.time() - meta["now"] < 86_400:
            return path
    print(f"generating {args.rows:,} rows -> {path}", file=sys.stderr)
    generate.generate(path, args.rows, args.seed, generate.default_now())
    return path


def prepare_work(work: Path, csv: Path, chunk_size: int, ledger: str, map_workers: int | None = None) -> Path:
    """A config beside a drop folder holding (a link to) the CSV; returns the config path."""
    drop = work / "drop"
    shutil.rmtree(drop, ignore_errors=True)
    drop.mkdir(parents=True)
    (drop / csv.name).symlink_to(csv.resolve())
    config = work / "capi-uploader.toml"
    workers = "" if map_workers is None else f"\nmap_workers = {map_workers}"
    config.write_text(CONFIG.format(ledger=ledger, chunk_size=chunk_size, map_workers=workers), encoding="utf-8")
    return config


class Child(NamedTuple):
    """What ``measure`` saw of one child process."""

    text: str  # its stdout
    seconds: float  # wall time
    peak_mb: float
    code: int  # exit code
    cpu_seconds: float  # user + system of the child and its descendants
    descendants_cpu_seconds: float  # of the descendants alone (a run's mapping workers), from the last samples


def measure(command: list[str], env: dict[str, str], cwd: Path) -> Child:
    """Run a child to completion and measure it.

    Peak memory is the largest sum of the resident memory of the child and all its descendants
    (the mapping workers of a run), sampled every 50 ms, or the child's own maximum resident set
    size when that is larger (a peak shorter than a sample). CPU time is the kernel's count for
    the child and the descendants it waited for; the descendants' share is their last sample.
    """
    import psutil

    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, stdout=out, env=env, cwd=cwd)
        tree_peak, descendants_cpu = _watch_tree(psutil.Process(child.pid))
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    own_peak = usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux
    return Child(text, seconds, max(own_peak, tree_peak / 2**20), child.returncode,
                 usage.ru_utime + usage.ru_stime, descendants_cpu)


def _watch_tree(process: Any) -> tuple[int, float]:
    """Poll until the process exits (it stays a zombie until waited for): the peak RSS sum in
    bytes, and the CPU seconds its descendants had used when last seen."""
    import psutil

    peak, cpu = 0, {}
    while process.status() != psutil.STATUS_ZOMBIE:
        try:
            descendants = process.children(recursive=True)
            peak = max(peak, sum(member.memory_info().rss for member in [process, *descendants]))
            cpu.update({member.pid: sum(member.cpu_times()[:2]) for member in descendants})
        except psutil.Error:
            pass  # a worker came or went between the listing and the reading
        time.sleep(0.05)
    return peak, sum(cpu.values())


def run_stage(stage: str, config: Path, csv: Path, env: dict[str, str]) -> Measure:
    command = [sys.executable, str(HERE / "stages.py"), stage, "--config", str(config), "--csv", str(csv)]
    child = measure(command, env, config.parent)
    if child.code != 0:
        raise SystemExit(f"stage {stage} failed with exit code {child.code}")
    result = json.loads(child.text.strip().splitlines()[-1])
    extra = {k: v for k, v in result.items() if k not in ("stage", "rows", "units", "seconds")}
    return Measure(stage, result["rows"], result["units"], result["seconds"], child.peak_mb, extra)


class Sandbox:
    """``capi-uploader sandbox`` in a process of its own, on a free loopback port."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        command = [str(uploader_command()), "sandbox", "--port", str(self.port), "--token", TOKEN,
                   "--dataset", DATASET]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if "listening" not in line:
            self.process.kill()
            raise SystemExit(f"the sandbox did not start: {line!r}")

    def accepted(self) -> int:
        """Events the sandbox took (from its request log, not its event list, which is large)."""
        with urllib.request.urlopen(f"{self.url}/_sandbox/requests", timeout=60) as answer:
            requests = json.load(answer)["requests"]
        return sum(r["n_events"] for r in requests if r["status"] == 200 and r["method"] == "POST")

    def cpu_seconds(self) -> float:
        import psutil

        return sum(psutil.Process(self.process.pid).cpu_times()[:2])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def uploader_command() -> Path:
    script = Path(sys.executable).parent / "capi-uploader"
    if not script.exists():
        raise SystemExit(f"{script} not found: install the project (pip install -e '.[bench]')")
    return script


def child_env(graph_url: str = "http://127.0.0.1:9") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("META_", "CAPI_UPLOADER"))}
    env.update(META_ACCESS_TOKEN=TOKEN, META_DATASET_ID=DATASET, META_GRAPH_URL=graph_url, PYTHONHASHSEED="0")
    return env


def whole_run(work: Path, csv: Path, chunk_size: int, map_workers: int | None,
              ledger: Path | None = None, ledger_url: str | None = None) -> Measure:
    """``capi-uploader run`` from process start to exit, against a fresh sandbox and a fresh ledger:
    a new SQLite file, a copy of ``ledger`` (copied before the clock starts), or ``ledger_url`` with
    its ledger tables dropped."""
    config = prepare_work(work / "run", csv, chunk_size, ledger_url or SQLITE_LEDGER, map_workers)
    shutil.rmtree(config.parent / "state", ignore_errors=True)
    if ledger is not None:
        (config.parent / "state").mkdir()
        shutil.copyfile(ledger, config.parent / "state" / "ledger.db")
    if ledger_url is not None:
        drop_ledger_tables(ledger_url)
    url = ledger_url or f"sqlite:///{config.parent / 'state' / 'ledger.db'}"
    sandbox = Sandbox()
    try:
        sandbox_before = sandbox.cpu_seconds()
        child = measure([str(uploader_command()), "--config", str(config), "run"], child_env(sandbox.url),
                        config.parent)
        sandbox_cpu = sandbox.cpu_seconds() - sandbox_before
        accepted = sandbox.accepted()
    finally:
        sandbox.stop()
    if child.code not in (0, 1):
        raise SystemExit(f"capi-uploader run failed with exit code {child.code}:\n{child.text}")
    rows = json.loads(csv.with_suffix(".json").read_text())["rows"]
    cpu = {"main_process": child.cpu_seconds - child.descendants_cpu_seconds,
           "mapping_workers": child.descendants_cpu_seconds, "sandbox": sandbox_cpu}
    return Measure("run" if ledger is None else "run_grown", rows, accepted, child.seconds, child.peak_mb,
                   {"exit_code": child.code, "ledger": ledger_counts(url),
                    "ledger_backend": make_url(url).get_backend_name(),
                    "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
                    "summary": child.text.strip().splitlines()[:12]})


def grown_ledger_file(args: argparse.Namespace) -> Path:
    """The grown ledger for ``--ledger-events``, built once and kept beside the CSVs."""
    path = args.data / f"ledger-{args.ledger_events}.db"
    if not path.exists():
        print(f"building a ledger of {args.ledger_events:,} sent events -> {path}", file=sys.stderr)
        grown_ledger.grown_ledger(path, args.ledger_events)
    return path


def ledger_counts(url: str) -> dict[str, int]:
    with _engine(url) as engine, engine.connect() as conn:
        return dict(conn.exec_driver_sql("SELECT status, COUNT(*) FROM events GROUP BY status").all())


def drop_ledger_tables(url: str) -> None:
    """A scratch database's ledger tables dropped, so the run starts from an empty ledger."""
    with _engine(url) as engine:
        metadata.drop_all(engine)


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def run_all(args: argparse.Namespace, work: Path) -> dict[str, Measure]:
    csv = data_file(args).resolve()
    wanted = [s.strip() for s in args.stages.split(",") if s.strip()]
    config = prepare_work(work / "stages", csv, args.chunk_size, SQLITE_LEDGER, args.map_workers)
    shutil.rmtree(config.parent / "state", ignore_errors=True)
    results: dict[str, Measure] = {}
    for stage in [s for s in STAGES if s in wanted]:
        print(f"measuring {stage} ...", file=sys.stderr)
        if stage == "deliver":
            sandbox = Sandbox()
            try:
                results[stage] = run_stage(stage, config, csv, child_env(sandbox.url))
                results[stage].extra["accepted_by_sandbox"] = sandbox.accepted()
            finally:
                sandbox.stop()
        else:
            results[stage] = run_stage(stage, config, csv, child_env())
    if "run" in wanted:
        print("measuring a whole capi-uploader run ...", file=sys.stderr)
        results["run"] = whole_run(work, csv, args.chunk_size, args.map_workers, ledger_url=args.ledger_url)
    if args.ledger_events > 0:
        grown = grown_ledger_file(args)
        print(f"measuring a whole run into a ledger of {args.ledger_events:,} events ...", file=sys.stderr)
        results["run_grown"] = whole_run(work, csv, args.chunk_size, args.map_workers, grown)
        results["run_grown"].extra["ledger_events_before"] = args.ledger_events
    return results


def machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    versions: dict[str, str | None] = {}
    for name in ("pandas", "numpy", "facebook-business", "phonenumbers", "SQLAlchemy", "httpx"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    import psutil

    memory_gb = round(psutil.virtual_memory().total / 2**30, 1)
    return {"cores": os.cpu_count(), "cpu": model, "memory_gb": memory_gb, "python": platform.python_version(),
            **versions}


def table(results: dict[str, Measure]) -> str:
    sdk = results.get("sdk")
    lines = ["| stage | rows | rows/s | peak MB | vs SDK |", "|---|---:|---:|---:|---:|"]
    for stage in ("read", "map", "validate", "map_workers", "ledger", "deliver", "run", "run_grown", "sdk"):
        if stage not in results:
            continue
        m = results[stage]
        ratio = f"{m.rows_per_second / sdk.rows_per_second:.2f}x" if sdk and stage != "sdk" else ""
        label = LABELS[stage].format(events=m.extra.get("ledger_events_before", 0))
        if m.extra.get("ledger_backend", "sqlite") != "sqlite":
            label += f" (ledger on {m.extra['ledger_backend']})"
        lines.append(f"| {label} | {m.rows:,} | {m.rows_per_second:,.0f} | {m.peak_mb:,.0f} | {ratio} |")
    return "\n".join(lines)


def verdicts(results: dict[str, Measure]) -> list[str]:
    """The issue's targets, each with the measured figure."""
    out = []
    sdk = results.get("sdk")
    if sdk and "run" in results:
        ratio = results["run"].rows_per_second / sdk.rows_per_second
        out.append(f"whole run vs SDK payload building: {ratio:.2f}x (target >= 2x) "
                   f"{'MET' if ratio >= 2 else 'NOT MET'}")
    if sdk and "map" in results:
        ratio = results["map"].rows_per_second / sdk.rows_per_second
        out.append(f"map/normalise/hash vs SDK, in this one process: {ratio:.2f}x (target >= 4x) "
                   f"{'MET' if ratio >= 4 else 'NOT MET'}")
    if sdk and "map_workers" in results:
        pooled = results["map_workers"]
        ratio = pooled.rows_per_second / sdk.rows_per_second
        out.append(f"map + validate in {pooled.extra.get('workers')} worker process(es), as a run maps: {ratio:.2f}x "
                   f"the SDK (target >= 4x) {'MET' if ratio >= 4 else 'NOT MET'}")
    if "run" in results:
        run = results["run"]
        sent = run.extra.get("ledger", {}).get("sent", 0)
        out.append(f"whole run delivered: the sandbox accepted {run.units:,} events, the ledger holds {sent:,} as sent, "
                   f"{sum(run.extra.get('ledger', {}).values()) - sent:,} in another state "
                   f"{'(consistent)' if sent == run.units else '(MISMATCH)'}")
        peak = results["run"].peak_mb
        out.append(f"peak memory of the whole run: {peak:,.0f} MB (target <= 300 MB) "
                   f"{'MET' if peak <= 300 else 'NOT MET'}")
        if "cpu_seconds" in run.extra:
            out.append(cpu_line(run.extra["cpu_seconds"], run.seconds))
            if sdk:
                out.append(ceiling_line(run.extra["cpu_seconds"], run.rows, sdk))
    if "run_grown" in results:
        grown = results["run_grown"]
        fresh = f" ({grown.rows_per_second / results['run'].rows_per_second:.2f}x the fresh ledger's)" \
            if "run" in results else ""
        out.append(f"whole run into a ledger already holding {grown.extra['ledger_events_before']:,} sent events: "
                   f"{grown.seconds:.1f} s, {grown.rows_per_second:,.0f} rows/s{fresh}, peak {grown.peak_mb:,.0f} MB, "
                   f"{grown.units:,} events accepted by the sandbox, "
                   f"{grown.extra['ledger'].get('sent', 0) - grown.extra['ledger_events_before']:,} more sent in the ledger")
        out.append(cpu_line(grown.extra["cpu_seconds"], grown.seconds).replace("whole run CPU", "its CPU"))
    if sdk:
        phones = sdk.extra.get("phones", {})
        wrong = sum(v for k, v in phones.items() if k != "same")
        total = sum(phones.values())
        out.append(f"phone hashes the SDK gets wrong against Meta's rules: {wrong:,} of {total:,} rows with a "
                   f"phone ({', '.join(f'{k} {v:,}' for k, v in sorted(phones.items()))})")
    return out


def cpu_line(cpu: dict[str, float], seconds: float) -> str:
    """Where the whole run's CPU went: what bounds it on a machine whose cores are all busy."""
    total = sum(cpu.values())
    parts = ", ".join(f"{name.replace('_', ' ')} {value:.1f} s" for name, value in cpu.items())
    return (f"whole run CPU: {parts}: {total:.1f} s of CPU in {seconds:.1f} s, "
            f"{total / seconds:.1f} of {os.cpu_count()} cores")


def ceiling_line(cpu: dict[str, float], rows: int, sdk: Measure) -> str:
    """The fastest this code could run on this machine: its own CPU (main process and mapping
    workers) spread over every core with none idle and the sandbox's share free. A target above
    this cannot be reached by overlapping the work better, only by less CPU per row."""
    own = cpu["main_process"] + cpu["mapping_workers"]
    cores = os.cpu_count() or 1
    seconds = own / cores
    return (f"whole run at best on {cores} cores: {own:.1f} s of its own CPU / {cores} = {seconds:.1f} s, "
            f"{rows / seconds / sdk.rows_per_second:.2f}x the SDK (every core busy all the time, the sandbox free)")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="capi-bench-"))
    try:
        results = run_all(args, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    report = {"machine": machine(), "rows": args.rows, "seed": args.seed, "chunk_size": args.chunk_size,
              "map_workers": args.map_workers,
              "results": {k: {**asdict(m), "rows_per_second": m.rows_per_second} for k, m in results.items()},
              "verdicts": verdicts(results)}
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    info = report["machine"]
    print(f"\n{args.rows:,} rows, {info['cores']} cores ({info['cpu']}), Python {info['python']}\n")
    print(table(results))
    print()
    for line in report["verdicts"]:
        print("- " + line)
    print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
