"""Sharded, resumable, verifiable dataset writing (WebDataset-style tar shards + manifest).

Each shard holds samples [k*shard_size, (k+1)*shard_size) and depends only on (config, seed, index),
so one shard can be regenerated alone and a cluster job array can split shards across machines.
A shard is written to a temp file and renamed; the manifest (atomic too) lists finished shards with
their sha256. On resume, listed shards whose checksum matches are kept, everything else is redone.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import signal
import tarfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from homeloc.runtime.hashing import file_sha256
from homeloc.runtime.io import atomic_open, atomic_write, make_output_dir

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class DatasetError(RuntimeError):
    """A dataset folder is inconsistent (corrupt shard, config mismatch); names the file."""


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def tar_member(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add a file with fixed metadata so the same samples give byte-identical shards."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
    info.uname = info.gname = ""
    tf.addfile(info, io.BytesIO(data))


def shard_name(kind: str, k: int) -> str:
    return f"{kind}-{k:06d}.tar"


def write_shard(path: Path, samples: Iterable[dict[str, bytes]]) -> int:
    """samples: dicts of member suffix -> bytes, with the key under '__key__'. Atomic."""
    n = 0
    with atomic_open(path, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for s in samples:
            key = s["__key__"]
            for suffix, data in sorted((k, v) for k, v in s.items() if k != "__key__"):
                tar_member(tf, f"{key}.{suffix}", data)
            n += 1
    return n


def read_manifest(out: Path) -> dict | None:
    p = out / MANIFEST
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{p}: corrupt manifest ({e}); remove it or pass --overwrite") from None


def _write_manifest(out: Path, manifest: dict) -> None:
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))


def _init_worker(parent: int) -> None:
    """Shard-writer processes: one OpenCV thread each (the pool already fills the cores), and they
    die with the process that started them (see die_with_parent)."""
    import cv2

    cv2.setNumThreads(1)
    die_with_parent(parent)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_parent(parent: int, poll_s: float = 0.5) -> None:
    """End this (worker) process as soon as `parent` (the pid that started the pool) is gone, even
    after a kill -9 of it: Linux's parent-death signal (SIGKILL) at once, and a daemon thread that
    watches the process that forked us (the parent, or a forkserver that exits with it) and the
    parent pid, for other systems and for a parent that died before the signal was armed."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the watcher alone
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    forker = os.getppid()

    def gone() -> bool:
        return os.getppid() != forker or not _alive(parent)

    if gone():
        os._exit(1)

    def watch() -> None:
        while not gone():
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _shard_job(args):
    make_samples, path, indices = args
    count = write_shard(path, make_samples(indices))
    skipped = getattr(make_samples, "skipped", None)  # unreadable source images (see sources.Source)
    return path.name, count, dict(skipped()) if skipped else {}


def _remove_stale_temps(path: Path) -> None:
    """Temp files of this shard left by a killed run (atomic_open's `.NAME.*.tmp`)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _open_manifest(
    out: Path, kind: str, config: dict, chash: str, num: int, shard_size: int, overwrite: bool
) -> dict:
    """The manifest to resume (same config), or a new one (none yet, or --overwrite of another config)."""
    manifest = read_manifest(out)
    if manifest is not None and manifest.get("config_hash") != chash:
        if not overwrite:
            raise DatasetError(
                f"{out / MANIFEST}: this folder holds a dataset made with another configuration; "
                "pass --overwrite to replace it or choose another --out"
            )
        for p in out.glob(f"{kind}-*.tar"):
            p.unlink()
        manifest = None
    if manifest is None:
        manifest = {"format_version": FORMAT_VERSION, "kind": kind, "config_hash": chash, "config": config,
                    "num": num, "shard_size": shard_size, "shards": {}, "complete": False}  # fmt: skip
    return manifest


def build(
    out: Path,
    kind: str,
    config: dict,
    num: int,
    shard_size: int,
    make_samples: Callable[[range], Iterable[dict[str, bytes]]],
    workers: int = 1,
    overwrite: bool = False,
    only_shards: list[int] | None = None,
) -> Path:
    """Write (or resume) a sharded dataset of `num` samples into out; returns out/manifest.json.

    make_samples(range) -> per-sample member dicts; it must be picklable when workers > 1.
    config: everything that determines the bytes (the manifest refuses to mix configs).
    """
    out = make_output_dir(out)
    chash = config_hash({"kind": kind, "num": num, "shard_size": shard_size, **config})
    manifest = _open_manifest(out, kind, config, chash, num, shard_size, overwrite)
    n_shards = (num + shard_size - 1) // shard_size
    todo = []
    for k in only_shards if only_shards is not None else range(n_shards):
        if not 0 <= k < n_shards:
            raise ValueError(f"shard {k} out of range 0..{n_shards - 1}")
        name = shard_name(kind, k)
        entry = manifest["shards"].get(name)
        path = out / name
        if entry and path.exists() and file_sha256(path) == entry["sha256"]:
            continue
        if entry:
            log.warning("%s: checksum mismatch or missing, regenerating", path)
            manifest["shards"].pop(name)
        _remove_stale_temps(path)
        todo.append((make_samples, path, range(k * shard_size, min((k + 1) * shard_size, num))))
    bar = tqdm(
        total=sum(len(t[2]) for t in todo),
        desc=f"{kind} -> {out}",
        unit=kind[:-1] if kind.endswith("s") else kind,
    )
    pool = (
        ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(os.getpid(),))
        if workers > 1 and len(todo) > 1
        else None
    )
    try:
        for name, count, skipped in pool.map(_shard_job, todo) if pool else map(_shard_job, todo):
            manifest["shards"][name] = {"count": count, "sha256": file_sha256(out / name)}
            if skipped:  # listed only when there are any: clean datasets keep their manifest bytes
                manifest["skipped_sources"] = dict(
                    sorted({**manifest.get("skipped_sources", {}), **skipped}.items())
                )
            manifest["complete"] = len(manifest["shards"]) == n_shards
            _write_manifest(out, manifest)
            bar.update(count)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
        bar.close()
    manifest["complete"] = len(manifest["shards"]) == n_shards
    _write_manifest(out, manifest)
    return out / MANIFEST


def verify(out: Path) -> dict:
    """Check every shard against the manifest; raises DatasetError naming the first bad file."""
    out = Path(out)
    manifest = read_manifest(out)
    if manifest is None:
        raise DatasetError(f"{out}: no {MANIFEST} (not a homeloc dataset, or never finished a shard)")
    if not manifest.get("complete"):
        raise DatasetError(
            f"{out / MANIFEST}: dataset incomplete ({len(manifest['shards'])} shards done); rerun to resume"
        )
    for name, entry in sorted(manifest["shards"].items()):
        p = out / name
        if not p.exists():
            raise DatasetError(f"{p}: shard listed in the manifest is missing")
        if file_sha256(p) != entry["sha256"]:
            raise DatasetError(f"{p}: checksum mismatch (corrupt or modified shard)")
    return manifest


def iter_shard(path: Path):
    """Yield (key, {suffix: bytes}) per sample of one shard, in order."""
    try:
        with tarfile.open(path, "r") as tf:
            current, members = None, {}
            for m in tf:
                key, _, suffix = m.name.partition(".")
                if current is not None and key != current:
                    yield current, members
                    members = {}
                current = key
                members[suffix] = tf.extractfile(m).read()
            if current is not None:
                yield current, members
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"{path}: unreadable shard ({e})") from None
