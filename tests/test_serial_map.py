"""manycore._serial.serial_map: the C iterator behind pmap's serial stream (refcounts, errors, GC)."""

from __future__ import annotations

import gc
import operator
import sys
import weakref
from typing import Any

import pytest

from manycore._map import _serial


def double(x: int) -> int:
    if x == 13:
        raise ValueError(f"unlucky {x}")
    return 2 * x


def replace(index: int, exc: Exception) -> tuple[str, int, str]:
    return ("failed", index, str(exc))


def reraise_with_note(index: int, exc: Exception) -> Any:
    exc.add_note(f"at {index}")
    raise exc


def test_results_in_order_with_failures_replaced_at_their_input_position() -> None:
    out = list(_serial.serial_map(double, range(20), 100, replace))
    assert out[:13] == [2 * x for x in range(13)]
    assert out[13] == ("failed", 113, "unlucky 13")
    assert out[14:] == [2 * x for x in range(14, 20)]


def test_on_error_that_raises_stops_the_iteration_with_that_exception() -> None:
    it = _serial.serial_map(double, list(range(20)), 0, reraise_with_note)
    got = [next(it) for _ in range(13)]
    with pytest.raises(ValueError, match="unlucky 13") as info:
        next(it)
    assert info.value.__notes__ == ["at 13"]
    assert info.value.__traceback__ is not None
    assert any(
        frame.name == "double" for frame in __import__("traceback").extract_tb(info.value.__traceback__)
    )
    assert got == [2 * x for x in range(13)]
    assert next(it) == 28  # the iterator goes on after the failed item, like map() would not


def test_base_exceptions_pass_through_without_the_callback() -> None:
    called = []

    def interrupt(x: int) -> int:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(_serial.serial_map(interrupt, [1], 0, lambda i, e: called.append(i)))
    assert called == []


def test_an_input_error_propagates() -> None:
    def items() -> Any:
        yield 1
        raise RuntimeError("input broke")

    it = _serial.serial_map(double, items(), 0, replace)
    assert next(it) == 2
    with pytest.raises(RuntimeError, match="input broke"):
        next(it)


def test_length_hint_follows_the_input() -> None:
    it = _serial.serial_map(double, list(range(10)), 0, replace)
    assert operator.length_hint(it) == 10
    next(it)
    assert operator.length_hint(it) == 9
    list(it)
    assert operator.length_hint(it) == 0
    assert operator.length_hint(_serial.serial_map(double, iter(lambda: 1, 2), 0, replace), 7) == 7


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((1, [], 0, replace), TypeError, "fn must be callable"),
        ((double, 5, 0, replace), TypeError, "not iterable"),
        ((double, [], -1, replace), ValueError, "start must be >= 0"),
        ((double, [], 0, None), TypeError, "on_error must be callable"),
        ((double, [], "0", replace), TypeError, "integer"),
    ],
)
def test_bad_arguments(args: tuple[Any, ...], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        _serial.serial_map(*args)


def test_the_type_cannot_be_instantiated_from_python() -> None:
    with pytest.raises(TypeError, match="cannot create"):
        type(_serial.serial_map(double, [], 0, replace))()


def run_all_paths(items: list[Any], results: list[Any]) -> None:
    out = list(_serial.serial_map(lambda item: results[items.index(item)], items, 0, replace))
    assert out == results
    list(_serial.serial_map(double, range(20), 0, replace))  # a failure replaced
    try:
        list(_serial.serial_map(double, range(20), 0, reraise_with_note))
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("no exception")
    _serial.serial_map(double, items, 0, replace)  # never iterated


def test_no_reference_is_leaked() -> None:
    class Item:
        pass

    items = [Item() for _ in range(50)]
    results = [object() for _ in range(50)]
    kind = type(_serial.serial_map(double, [], 0, replace))
    run_all_paths(items, results)  # first-call effects (caches) before counting
    gc.collect()
    before = [sys.getrefcount(x) for x in (double, replace, items[0], results[0], kind)]
    for _ in range(200):
        run_all_paths(items, results)
    gc.collect()  # tracebacks of the re-raised exceptions hold frames of `double`
    assert [sys.getrefcount(x) for x in (double, replace, items[0], results[0], kind)] == before


def test_a_reference_cycle_through_the_iterator_is_collected() -> None:
    class Holder:
        pass

    holder = Holder()
    holder.stream = _serial.serial_map(lambda x, h=holder: h, [1, 2], 0, replace)
    alive = weakref.ref(holder)
    del holder
    gc.collect()
    assert alive() is None


def test_close_ends_the_iteration() -> None:
    it = _serial.serial_map(double, list(range(10)), 0, replace)
    assert next(it) == 0
    it.close()
    assert list(it) == []
    assert operator.length_hint(it) == 0
    it.close()  # twice is fine
