"""Shipping work to other processes: cloudpickle, plus shared memory for big arrays.

* Functions, lambdas and closures are pickled with cloudpickle, so anything
  defined interactively or inside a function can run in a worker process.
* NumPy arrays of at least :data:`SHARED_MEMORY_MIN_BYTES` are not copied
  through the pipe: the parent copies them once into a
  ``multiprocessing.shared_memory`` segment and the worker maps that segment
  (copy-on-write, so a task that mutates its input behaves as with pickling).
  The parent releases every segment of a task when the task is done, failed,
  timed out or its worker died (:func:`release`).
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
import sys
from multiprocessing import shared_memory
from typing import Any

import cloudpickle

#: Arrays at least this large go through shared memory instead of the pipe.
SHARED_MEMORY_MIN_BYTES = 1 << 20

_DEV_SHM = "/dev/shm"


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, file: io.BytesIO, segments: list[shared_memory.SharedMemory] | None) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._segments = segments

    def reducer_override(self, obj: Any) -> Any:
        if self._segments is not None:
            np = sys.modules.get("numpy")
            if (
                np is not None
                and type(obj) is np.ndarray
                and obj.nbytes >= SHARED_MEMORY_MIN_BYTES
                and not obj.dtype.hasobject
            ):
                return self._share(np, obj)
        return super().reducer_override(obj)

    def _share(self, np: Any, array: Any) -> Any:
        shm = shared_memory.SharedMemory(create=True, size=array.nbytes)
        self._segments.append(shm)  # type: ignore[union-attr]
        view = np.ndarray(array.shape, dtype=array.dtype, buffer=shm.buf)
        view[...] = array
        del view  # no export may outlive the copy: close() needs the buffer free
        return _attach_array, (shm.name, array.shape, array.dtype.str, array.nbytes)


def dumps(obj: Any, segments: list[shared_memory.SharedMemory] | None = None) -> bytes:
    """cloudpickle ``obj``; with ``segments`` (a list), big arrays go to shared memory."""
    buffer = io.BytesIO()
    _Pickler(buffer, segments).dump(obj)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    return pickle.loads(data)


def release(segments: list[shared_memory.SharedMemory]) -> None:
    """Close and unlink the segments created by :func:`dumps` (idempotent)."""
    while segments:
        shm = segments.pop()
        try:
            shm.close()
        except BufferError:  # pragma: no cover - a view escaped; the unlink still frees it
            pass
        try:
            shm.unlink()
        except FileNotFoundError:
            pass


_attached: list[Any] = []  # fallback path: keep SharedMemory objects alive in the worker


def _attach_array(name: str, shape: tuple[int, ...], dtype: str, nbytes: int) -> Any:
    """Worker side: a copy-on-write NumPy view of a shared segment."""
    import numpy as np

    path = os.path.join(_DEV_SHM, name.lstrip("/"))
    if os.path.exists(path):
        # Map the segment directly: no resource-tracker registration in the
        # worker (which would unlink or warn about the parent's segment).
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), nbytes, access=mmap.ACCESS_COPY)
        return np.frombuffer(
            mapped, dtype=np.dtype(dtype), count=int(np.prod(shape, dtype=np.int64))
        ).reshape(shape)
    shm = shared_memory.SharedMemory(name=name)  # pragma: no cover - platforms without /dev/shm
    _attached.append(shm)
    return np.ndarray(shape, dtype=np.dtype(dtype), buffer=shm.buf).copy()
