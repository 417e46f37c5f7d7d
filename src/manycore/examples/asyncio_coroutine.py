# Unit section: Python's asyncio Module > 1. Asynchronous Programming > Coroutines
# Shows: a coroutine (async def) that pauses at `await asyncio.sleep(...)`, run by asyncio.run(),
#   which creates an event loop, runs the coroutine to completion and closes the loop.
# Corrected: nothing; --small shortens the 1-second sleep. Calling greet("Alice") without
#   asyncio.run (or await) only creates a coroutine object and runs none of its body; shown at the end.
from __future__ import annotations

import asyncio
import sys


async def greet(name: str, pause_s: float = 1.0) -> None:
    print(f"Hello, {name}!")
    await asyncio.sleep(pause_s)  # Simulate an asynchronous task
    print(f"Goodbye, {name}!")


def main(small: bool = False) -> None:
    # Run the coroutine
    asyncio.run(greet("Alice", 0.05 if small else 1.0))

    coro = greet("Bob")  # a coroutine object: nothing printed yet
    print("greet('Bob') without asyncio.run is a", type(coro).__name__, "and printed nothing")
    coro.close()  # never awaited: close it to avoid the "was never awaited" warning


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
