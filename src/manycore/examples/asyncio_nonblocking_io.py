# Unit section: Python's asyncio Module > 3. Concurrency vs. Parallelism > Non-blocking I/O with asyncio
# Shows: three simulated network calls (asyncio.sleep) awaited together with asyncio.gather: the
#   waits overlap, so three 2-second "fetches" take about 2 seconds.
# Corrected (docs/seed-errata.md, E8): in the unit, `asyncio.run(main())` is indented inside
#   `async def main()`. The file then only defines two functions and exits: it prints nothing.
#   (And calling main() that way would fail: asyncio.run() cannot be called from a running event
#   loop.) Here asyncio.run(main()) is at the top level, under the `__main__` guard; --small
#   scales the 2-second delays down by 20. The program runs the unit's text too, to show it
#   printing nothing.
from __future__ import annotations

import asyncio
import contextlib
import io
import sys
import time

# The unit's program, verbatim.
UNIT_SOURCE = """\
import asyncio

async def fetch_data(api_name):
    print(f"Fetching data from {api_name}...")
    await asyncio.sleep(2) # Simulate network delay
    print(f"Data from {api_name} fetched!")

async def main():
    # Concurrently fetch data from multiple APIs
    await asyncio.gather(
        fetch_data("API_1"),
        fetch_data("API_2"),
        fetch_data("API_3")
    )

    asyncio.run(main())
"""

DELAY_S = 2.0


async def fetch_data(api_name: str) -> str:
    print(f"Fetching data from {api_name}...")
    await asyncio.sleep(DELAY_S)  # Simulate network delay
    print(f"Data from {api_name} fetched!")
    return f"data from {api_name}"


async def main_async() -> list[str]:
    # Concurrently fetch data from multiple APIs
    return list(await asyncio.gather(fetch_data("API_1"), fetch_data("API_2"), fetch_data("API_3")))


def main(small: bool = False) -> None:
    global DELAY_S
    DELAY_S = 0.1 if small else 2.0

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(UNIT_SOURCE, "<unit>", "exec"), {"__name__": "__main__"})
    print(f"The unit's text, run as a script, printed {len(out.getvalue())} characters.")

    started = time.perf_counter()
    results = asyncio.run(main_async())  # at the top level, where it belongs
    elapsed = time.perf_counter() - started
    print("Results:", results)
    print(f"3 fetches of {DELAY_S:g} s each took {elapsed / DELAY_S:.1f} x one fetch (about 1: they overlap)")


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
