"""Scale-out: a bench's pairs split over processes that share its output folder, then merged.

``bench(num_processes=n)`` starts ``n`` worker processes itself (one per GPU when there are GPUs);
under ``accelerate launch -m imposter bench`` or ``torchrun`` each rank takes its share. Either way
process ``i`` runs pairs ``i::n`` and one coordinator merges the records and writes the report once
every share is done. Rank 0 waits for the records to exist rather than at a collective barrier, which
would time out when shares take hours and finish at different times; if a rank dies, the launcher
stops the others.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..engine import ImPoster
from ..errors import ConfigError, ImposterError
from .config import BenchConfig, expected_keys
from .pairs import read_pairs
from .runner import run_bench
from .store import prepare_output, record_path, settings_conflict, stored_settings

WAIT_SECONDS = 5.0  # how often a waiting process looks at the others' progress


def launched_rank() -> tuple[int, int, int]:
    """(rank, world size, local rank) as set by ``accelerate launch`` or ``torchrun``; (0, 1, 0) otherwise."""
    rank = int(os.environ.get("RANK", "0"))
    return rank, int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", str(rank)))


def bench(
    config: BenchConfig,
    out: str | Path,
    *,
    num_processes: int = 1,
    engine: ImPoster | None = None,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], object] = tqdm.write,
    worker_init: Callable[[], object] | None = None,
) -> list[dict[str, Any]]:
    """Run the whole bench here, in ``num_processes`` worker processes, or as one launched rank.

    ``worker_init`` (a module-level function) runs first in each worker process, e.g. to quiet
    libraries as the command line does. Returns the records in report order (none on ranks other than 0).
    """
    out = Path(out)
    rank, world, local_rank = launched_rank()
    if world > 1:
        if num_processes not in (1, world):
            raise ConfigError(
                f"$num_processes {num_processes} contradicts the {world} processes of the launcher; drop it"
            )
        return _run_as_rank(config, out, rank, world, local_rank, engine, overwrite, progress, log)
    if num_processes < 1:
        raise ConfigError(f"$num_processes must be >= 1, got {num_processes}")
    if num_processes > 1:
        _run_workers(config.validate(), out, num_processes, overwrite, progress, worker_init)
        overwrite = False  # done before the workers started
    return run_bench(config, out, engine=engine, overwrite=overwrite, progress=progress, log=log)


def _run_as_rank(
    config: BenchConfig,
    out: Path,
    rank: int,
    world: int,
    local_rank: int,
    engine: ImPoster | None,
    overwrite: bool,
    progress: bool,
    log: Callable[[str], object],
) -> list[dict[str, Any]]:
    """One rank's share; rank 0 then waits for every record and merges."""
    import torch

    if config.device is None and torch.cuda.is_available():
        config = replace(config, device=f"cuda:{local_rank}")
    pairs = read_pairs(config.validate().pairs)
    if rank > 0:  # start once rank 0 has checked (and, with --overwrite, cleared) the folder
        settings = json.loads(json.dumps(config.settings(pairs)))
        _wait(lambda: _holds_settings(out, settings), "rank 0 to check the output folder", log)
    run_bench(
        config,
        out,
        shard=(rank, world),
        merge=False,
        engine=engine,
        overwrite=overwrite and rank == 0,
        progress=progress,
        log=log,
    )
    if rank > 0:
        return []
    paths = [record_path(out, *key) for key in expected_keys(pairs, config)]
    _wait(lambda: all(path.exists() for path in paths), "the other processes to finish", log)
    return run_bench(config, out, engine=engine, progress=progress, log=log)  # nothing left: merge, report


def _holds_settings(out: Path, settings: dict[str, Any]) -> bool:
    stored = stored_settings(out)
    return (
        stored is not None
        and settings_conflict(stored, settings) is None
        and set(settings["methods"]) <= set(stored["methods"])
    )


def _wait(condition: Callable[[], bool], what: str, log: Callable[[str], object]) -> None:
    if condition():
        return
    log(f"waiting for {what}")
    while not condition():
        time.sleep(WAIT_SECONDS)


def _run_workers(
    config: BenchConfig,
    out: Path,
    count: int,
    overwrite: bool,
    progress: bool,
    worker_init: Callable[[], object] | None,
) -> None:
    """Start ``count`` processes, each running its share of the pairs; stop them all if one fails."""
    import torch

    prepare_output(out, config.settings(read_pairs(config.pairs)), overwrite)  # before they start
    gpus = torch.cuda.device_count() if config.device is None else 0
    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    workers = [
        context.Process(
            target=_worker,
            args=(
                replace(config, device=f"cuda:{i % gpus}") if gpus else config,
                out,
                (i, count),
                progress,
                worker_init,
            ),
        )
        for i in range(count)
    ]
    for worker in workers:
        worker.start()
    try:
        running = list(workers)
        while running:
            wait([worker.sentinel for worker in running])
            for worker in [w for w in running if not w.is_alive()]:
                running.remove(worker)
                if worker.exitcode != 0:
                    raise ImposterError(
                        f"bench process {workers.index(worker) + 1} of {count} failed (exit code "
                        f"{worker.exitcode}, its error is above); fix that and run the same command "
                        "again: the images already done are kept"
                    )
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join()


def _worker(
    config: BenchConfig,
    out: Path,
    shard: tuple[int, int],
    progress: bool,
    worker_init: Callable[[], object] | None,
) -> None:
    """Entry point of a worker process: its share, with user errors as one line and exit code 2."""
    if worker_init is not None:
        worker_init()
    try:
        run_bench(config, out, shard=shard, merge=False, progress=progress)
    except ImposterError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
