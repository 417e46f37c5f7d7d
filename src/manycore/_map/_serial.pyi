from collections.abc import Callable, Iterable, Iterator
from typing import Any

class SerialMap(Iterator[Any]):
    def __next__(self) -> Any: ...
    def __length_hint__(self) -> int: ...
    def close(self) -> None: ...

def serial_map(
    fn: Callable[[Any], Any],
    iterable: Iterable[Any],
    start: int,
    on_error: Callable[[int, Exception], Any],
    /,
) -> SerialMap: ...
