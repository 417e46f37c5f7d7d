"""AsyncExecutor: coroutine functions on a private event loop in a daemon thread.

The executor owns one event loop (``asyncio.new_event_loop()``, so an
installed loop policy such as uvloop's is honoured) running ``run_forever``
in a daemon thread named ``manycore-asyncio-N``.  Futures are real
:class:`concurrent.futures.Future`\\ s, usable from any thread.

What ``fn`` may be
    * a coroutine function (``async def``, a ``functools.partial`` of one, or
      an object with an ``async def __call__``): ``fn(*args, **kwargs)`` is
      called *on the loop thread* when the item gets a slot, and awaited there.
    * any other callable: it is run in the loop's default executor -- a
      thread pool of ``max_workers`` threads (created on demand, named
      ``<loop thread name>-call_N``) that the executor installs with
      ``loop.set_default_executor`` -- so that it cannot block the loop; if it
      returns an awaitable, that awaitable is awaited on the loop.
    * a coroutine *object* is refused with ``TypeError`` (submit the function
      and its arguments); the object is closed so it does not warn.

Concurrency
    ``max_workers`` (default 100, like aiohttp's connection limit) bounds how
    many items run at once, through an ``asyncio.Semaphore``; items wait for a
    slot in submission order.  An item is *started* once it holds a slot:
    ``future.running()`` is then true and ``future.cancel()`` returns
    ``False`` -- the stdlib's semantics, not asyncio's (a running coroutine is
    never cancelled through its future).

``shutdown(wait=True, *, cancel_futures=False)``
    Idempotent; ``submit`` raises ``RuntimeError`` afterwards.
    ``cancel_futures=True`` cancels every item that has not started (its
    future is cancelled, and ``wait``/``as_completed`` see it at once);
    **running coroutines are not cancelled**, whatever the arguments: they run
    to completion, like a thread pool's running calls.  Once every item has
    finished the loop stops, cancels any background tasks the coroutines left
    behind (``asyncio.run``'s clean-up), shuts down async generators and the
    default executor, and closes.  ``wait=True`` returns after all of that,
    with the loop thread joined; ``wait=False`` returns at once and the
    clean-up happens in the loop thread.  Called from the loop thread itself
    (inside a task), ``wait=True`` cannot join its own thread and behaves
    like ``wait=False``.

Ctrl-C and interpreter exit
    Leaving a ``with`` block by ``KeyboardInterrupt``, and an executor still
    open at exit, shut down with the queued items cancelled and, unlike
    ``shutdown``, the running coroutines cancelled too (their futures get
    ``concurrent.futures.CancelledError``), so ``finally`` blocks run and no
    "Task was destroyed but it is pending" or "coroutine was never awaited"
    warning is printed.  An executor its owner already shut down with
    ``wait=False`` is waited for at exit instead: what was not cancelled then
    runs to its end, as with the stdlib's pools.  Both happen when the main
    thread ends, before ``atexit`` handlers (which can no longer submit) and
    while the loop's default thread pool still takes plain functions.  After
    ``fork()`` the child has no loop thread: the child's copy refuses
    ``submit`` with ``RuntimeError``.

Exceptions raised by ``fn`` (``BaseException`` included) are set on the future
unchanged; they never stop the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import functools
import inspect
import itertools
import os
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any, ParamSpec, TypeVar, overload

from ._contract import ManycoreExecutor, MapPlan, check_max_workers, register_exit_hook
from .thread import ThreadExecutor

__all__ = ["AsyncExecutor"]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_MAX_WORKERS = 100

_thread_counter = itertools.count()
_live_executors: weakref.WeakSet[AsyncExecutor] = weakref.WeakSet()


def _is_coroutine_function(fn: object) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an async __call__, not callable()
    return call is not None and inspect.iscoroutinefunction(call)


class _WorkItem:
    """One submitted call.  ``task``, ``started`` and ``notified`` are touched on the loop thread only."""

    __slots__ = (
        "args",
        "call_future",
        "fn",
        "future",
        "kwargs",
        "notified",
        "started",
        "task",
        "urgent",
        "waiting_slot",
    )

    def __init__(
        self, future: _Future[Any], fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.future = future
        self.fn: Callable[..., Any] | None = fn
        self.args = args
        self.kwargs = kwargs
        self.task: asyncio.Task[None] | None = None
        self.started = False  # holds a slot and its future is RUNNING
        self.notified = False  # set_running_or_notify_cancel() was called
        self.urgent = False  # a worker of this executor waits for it: start without a slot
        self.waiting_slot = False  # its task waits for a slot (the semaphore)
        self.call_future: cf.Future[Any] | None = None  # a plain call's future on the thread pool
        future._item = self

    def release(self) -> None:
        # Drop the call's references as soon as it is settled (results can be big).
        self.fn = None
        self.args = ()
        self.kwargs = {}
        self.future._item = None


class _Future(cf.Future[R]):
    """An ``AsyncExecutor`` future: a wait that could never end raises or gets its call started.

    On the loop thread, a blocking ``result()``/``exception()`` of a call that
    has not finished would stop the loop that must run it: ``RuntimeError``.
    On a thread of the executor's call pool (a plain function waiting for
    another call of the same executor), a call still waiting for a slot
    starts at once, without one: with every slot held by such waiters it
    would otherwise never start.
    """

    def __init__(self, owner: AsyncExecutor) -> None:
        super().__init__()
        self._owner = weakref.ref(owner)
        self._item: _WorkItem | None = None

    def _check_wait(self, timeout: float | None) -> None:
        if self.done() or (timeout is not None and timeout <= 0):
            return
        owner = self._owner()
        if owner is None:
            return
        if threading.current_thread() is owner._thread:
            raise RuntimeError(
                "deadlock: a blocking wait for a call of this AsyncExecutor on its own event loop "
                "thread stops the loop that must run it; in a coroutine, "
                "`await asyncio.wrap_future(future)` instead"
            )
        item = self._item
        if item is not None and owner._on_call_thread():
            owner._call_on_loop(owner._hurry, item)

    def result(self, timeout: float | None = None) -> R:
        self._check_wait(timeout)
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._check_wait(timeout)
        return super().exception(timeout)


class AsyncExecutor(ManycoreExecutor):
    """Run coroutine functions (and plain callables) on a private event loop thread.

    See the module documentation for the exact semantics of ``submit``,
    ``max_workers`` and ``shutdown``.  ``loop_factory`` (default
    ``asyncio.new_event_loop``) builds the loop; ``thread_name`` names its thread.
    """

    backend_name = "asyncio"

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        thread_name: str | None = None,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    ) -> None:
        self._max_workers = check_max_workers(max_workers, DEFAULT_MAX_WORKERS)
        self._lock = threading.Lock()
        self._shutdown = False
        self._pid = os.getpid()
        self._forked = False
        self._pending: set[_WorkItem] = set()  # submitted, not started, not cancelled (under _lock)
        self._tasks: set[asyncio.Task[None]] = set()  # loop thread only
        self._loop = (loop_factory or asyncio.new_event_loop)()
        self._semaphore = asyncio.Semaphore(self._max_workers)
        name = thread_name or f"manycore-asyncio-{next(_thread_counter)}"
        # Our own default executor, shut down directly at the end (no helper
        # thread, unlike loop.shutdown_default_executor()).
        self._call_pool = ThreadExecutor(self._max_workers, thread_name_prefix=f"{name}-call")
        self._loop.set_default_executor(self._call_pool)
        self._thread = threading.Thread(target=self._run_loop, name=name, daemon=True)
        self._thread.start()
        _live_executors.add(self)

    # ------------------------------------------------------------ public API
    @property
    def max_workers(self) -> int:
        """How many items may run at once."""
        return self._max_workers

    def map_plan(self) -> MapPlan:
        """pmap hands items one at a time: each call is a coroutine (or a plain call) of its own."""
        return MapPlan(workers=self.max_workers, one_by_one=True, abandon=self.abandon, timed_from_start=True)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The executor's event loop (for ``call_soon_threadsafe`` and friends)."""
        return self._loop

    @overload
    def submit(
        self, fn: Callable[P, Coroutine[Any, Any, R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> cf.Future[R]: ...

    @overload
    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> cf.Future[R]: ...

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` on the loop; see the module documentation."""
        obj: object = fn  # typed as callable, but a coroutine object is the classic mistake
        if inspect.iscoroutine(obj):
            obj.close()
            raise TypeError("submit() takes a coroutine function and its arguments, not a coroutine object")
        if not callable(obj):
            raise TypeError(f"fn must be callable, not {type(obj).__name__}")
        future: _Future[Any] = _Future(self)
        item = _WorkItem(future, fn, args, kwargs)
        with self._lock:
            if self._forked:
                raise RuntimeError(
                    "this AsyncExecutor was created before fork(); its loop thread is in the parent"
                )
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._pending.add(item)
            # Under the lock, so _start for every accepted item is queued before
            # shutdown's _begin_drain (call_soon_threadsafe is FIFO).
            self._loop.call_soon_threadsafe(self._start, item)
        future.add_done_callback(functools.partial(self._on_future_done, item))
        return future

    @overload
    def map(
        self,
        fn: Callable[..., Coroutine[Any, Any, R]],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[R]: ...

    @overload
    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[R]: ...

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        """``Executor.map``: results in input order, ``timeout`` from the call; ``chunksize`` is ignored."""
        return super().map(fn, *iterables, timeout=timeout, chunksize=chunksize)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; see the module documentation for the exact semantics."""
        self._shutdown_impl(wait=wait, cancel_futures=cancel_futures, cancel_running=False)

    def _interrupted_exit(self) -> None:
        # Ctrl-C in a ``with`` block: coroutines, unlike threads, can be stopped
        self._shutdown_impl(wait=True, cancel_futures=True, cancel_running=True)

    # ------------------------------------------------------------ internals
    def _shutdown_impl(self, *, wait: bool, cancel_futures: bool, cancel_running: bool) -> None:
        with self._lock:
            if self._forked:
                return
            first = not self._shutdown
            self._shutdown = True
            not_started = list(self._pending) if cancel_futures else []
            if first:
                self._call_on_loop(self._begin_drain, cancel_running)
        for item in not_started:
            item.future.cancel()  # _on_future_done takes it from there
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    def _call_on_loop(self, callback: Callable[..., object], *args: Any) -> bool:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: everything is settled already
            return False
        return True

    def _on_future_done(self, item: _WorkItem, future: cf.Future[Any]) -> None:
        if future.cancelled():
            with self._lock:
                self._pending.discard(item)
            # Wake the item's task so it leaves the semaphore queue now and
            # notifies wait()/as_completed() waiters (set_running_or_notify_cancel).
            self._call_on_loop(self._cancel_waiting, item)

    def _cancel_waiting(self, item: _WorkItem) -> None:  # loop thread
        if item.task is not None and not item.started:
            item.task.cancel()

    def _start(self, item: _WorkItem) -> None:  # loop thread
        if item.future.cancelled():
            item.notified = True
            item.future.set_running_or_notify_cancel()
            item.release()
            return
        task = self._loop.create_task(self._execute(item))
        item.task = task
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._task_done, item))

    def _task_done(self, item: _WorkItem, task: asyncio.Task[None]) -> None:  # loop thread
        self._tasks.discard(task)
        if not item.notified:
            # The task was cancelled before its first step, so _execute never
            # ran: settle the future here, or wait()/as_completed() would hang.
            item.notified = True
            item.future.cancel()
            item.future.set_running_or_notify_cancel()
            item.release()

    async def _execute(self, item: _WorkItem) -> None:  # loop thread
        future = item.future
        try:
            held = False
            try:
                if not item.urgent:
                    item.waiting_slot = True
                    await self._semaphore.acquire()
                    held = True
            except asyncio.CancelledError:
                if not item.urgent or future.cancelled():
                    # Cancelled before it started (shutdown(cancel_futures=True),
                    # future.cancel(), or interpreter exit).
                    item.notified = True
                    future.cancel()
                    future.set_running_or_notify_cancel()
                    return
                # else: a worker of this executor waits for it (_hurry): no slot
            item.waiting_slot = False
            try:
                item.notified = True
                if not future.set_running_or_notify_cancel():
                    return
                item.started = True
                with self._lock:
                    self._pending.discard(item)
                try:
                    result = await self._call(item)
                except asyncio.CancelledError:
                    # Only the at-exit clean-up cancels a running item (or the
                    # coroutine cancelled itself): report it, do not propagate.
                    future.set_exception(cf.CancelledError("the coroutine was cancelled while running"))
                except BaseException as exc:
                    future.set_exception(exc)
                    del exc
                else:
                    future.set_result(result)
            finally:
                if held:
                    self._semaphore.release()
        finally:
            item.release()

    def _hurry(self, item: _WorkItem) -> None:  # loop thread
        """A call-pool thread of this executor waits for ``item``: start it now, without a slot."""
        if item.started or item.urgent or item.task is None or item.task.done():
            return
        item.urgent = True  # not waiting yet: it will not
        if item.waiting_slot:
            item.task.cancel()  # interrupts its wait for a slot; _execute goes on without one

    def _on_call_thread(self) -> bool:
        return self._call_pool.thread_pool.on_own_worker()

    def abandon(self, future: cf.Future[Any], what: str) -> None:
        """pmap gave up on a running call (``task_timeout``): cancel the coroutine, let go of the thread.

        A coroutine is cancelled (its slot is free again).  A plain call
        cannot be stopped: its thread is abandoned (see ``ThreadExecutor``)
        and the coroutine that waited for it ends, freeing its slot.
        """
        item = getattr(future, "_item", None)
        if item is None:
            return
        if item.call_future is not None:
            self._call_pool.thread_pool.abandon(item.call_future, what)
        self._call_on_loop(self._cancel_running, item)

    def _cancel_running(self, item: _WorkItem) -> None:  # loop thread
        if item.started and item.task is not None:
            item.task.cancel()

    async def _call(self, item: _WorkItem) -> Any:  # loop thread
        fn = item.fn
        assert fn is not None
        if _is_coroutine_function(fn):
            return await fn(*item.args, **item.kwargs)
        once = _Once(functools.partial(fn, *item.args, **item.kwargs))
        try:
            # a call a worker of this executor waits for (_hurry) may not wait for a thread either
            item.call_future = self._call_pool.thread_pool.submit(once, (), {}, beyond_limit=item.urgent)
            pending = asyncio.wrap_future(item.call_future, loop=self._loop)
        except RuntimeError as exc:
            if "can't create new thread at interpreter shutdown" not in str(exc):
                raise
            # CPython 3.12.0-3.12.2 (gh-113964) refuse to start a thread once
            # the interpreter is exiting, even for work that must finish
            # before exit: run the call here, on the loop thread, instead.
            # _Once keeps the call from running twice if the pool's queue
            # (which may already hold it) is served after all.
            result = once()
        else:
            result = await pending
        if inspect.isawaitable(result):
            result = await result
        return result

    def _begin_drain(self, cancel_running: bool) -> None:  # loop thread
        if cancel_running:
            for task in self._tasks:
                task.cancel()
        self._loop.create_task(self._drain())

    async def _drain(self) -> None:  # loop thread
        # No task is added after shutdown (submit refuses and every accepted
        # item's _start ran before _begin_drain), so this terminates.
        while self._tasks:
            await asyncio.wait(set(self._tasks))
        self._loop.stop()

    def _run_loop(self) -> None:  # loop thread
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                _cancel_leftover_tasks(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                self._call_pool.shutdown(wait=True)
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._forked = True
        self._shutdown = True


class _Once:
    """A call that runs at most once, whoever calls it first (later calls return None)."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self._call: Callable[[], Any] | None = call
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            call, self._call = self._call, None
        return None if call is None else call()


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Background tasks the coroutines created and left running: cancel and await them."""
    leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not leftovers:
        return
    for task in leftovers:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
    for task in leftovers:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception in a task left running at shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )


def _shutdown_at_exit() -> None:
    for executor in list(_live_executors):
        if executor._pid != os.getpid():
            continue
        if executor._shutdown:
            # shut down by its owner (wait=False): what was not cancelled then
            # runs to its end, as in the stdlib's pools at exit
            executor._shutdown_impl(wait=True, cancel_futures=False, cancel_running=False)
        else:
            executor._shutdown_impl(wait=True, cancel_futures=True, cancel_running=True)


def _forget_after_fork() -> None:
    for executor in list(_live_executors):
        executor._after_fork_in_child()


register_exit_hook(_shutdown_at_exit)  # before the loop's default thread pool stops
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
