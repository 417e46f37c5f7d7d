# Unit section: Program using asyncio to concurrently fetch and process data from multiple APIs
# Shows: the unit's program (aiohttp, asyncio.gather over three GETs, then process_data on each
#   todo) run unchanged in its logic, but against manycore's local demo API (shaped like
#   jsonplaceholder.typicode.com/todos, todos 1-3 identical), then the manycore way:
#   manycore.fetch.fetch_all (bounded concurrency, timeouts, retries, one result per URL).
# Corrected (docs/seed-errata.md, E17):
#   - the program needed the internet (and jsonplaceholder being up); it now talks to
#     manycore.fetch.DemoServer on 127.0.0.1, so it runs offline and in tests;
#   - no timeout: a server that never answers hangs it forever; here each request has one;
#   - asyncio.gather without return_exceptions: one failing URL (an HTTP error page, a 404
#     whose `{}` body has no "id") raises out of gather and every other result is lost;
#     fetch_all returns a record per URL instead, failures included;
#   - `await asyncio.sleep(1)` in process_data "simulates processing": --small shortens it.
from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiohttp

# The unit's program, verbatim.
UNIT_SOURCE = """\
import asyncio

import aiohttp

API_URLS = [

    "https://jsonplaceholder.typicode.com/todos/1",

    "https://jsonplaceholder.typicode.com/todos/2",

    "https://jsonplaceholder.typicode.com/todos/3",

]

async def fetch(session, url):

    async with session.get(url) as response:

        return await response.json()

async def process_data(data):

    # Simulate processing time

    await asyncio.sleep(1)

    return {"id": data["id"], "title": data["title"].upper()}


async def main():

    async with aiohttp.ClientSession() as session:

        tasks = [fetch(session, url) for url in API_URLS]

        responses = await asyncio.gather(*tasks)

        process_tasks = [process_data(data) for data in responses]

        processed_data = await asyncio.gather(*process_tasks)

    for item in processed_data:

        print(item)

if __name__ == "__main__":
    asyncio.run(main())
"""
PROCESS_S = 1.0


async def fetch(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
        response.raise_for_status()
        return await response.json()


async def process_data(data: Any) -> dict[str, Any]:
    # Simulate processing time
    await asyncio.sleep(PROCESS_S)
    return {"id": data["id"], "title": data["title"].upper()}


async def main_async(api_urls: list[str]) -> None:
    async with aiohttp.ClientSession() as session:
        tasks = [fetch(session, url) for url in api_urls]
        responses = await asyncio.gather(*tasks)
        process_tasks = [process_data(data) for data in responses]
        processed_data = await asyncio.gather(*process_tasks)
    for item in processed_data:
        print(item)


def main(small: bool = False) -> None:
    global PROCESS_S
    PROCESS_S = 0.05 if small else 1.0
    from manycore.fetch import DemoServer, fetch_all, process_data_sync

    with DemoServer(todos=20) as api:
        api_urls = api.todo_urls(3)  # the unit's API_URLS: /todos/1, /todos/2, /todos/3
        print("The unit's program, against the local demo API:")
        asyncio.run(main_async(api_urls))

        print("The manycore way (fetch_all), with one URL that does not exist:")
        results = fetch_all([*api_urls, api.url("/todos/999")], process=process_data_sync, deadline_s=30)
        for r in results:
            print(" ", "ok  " if r.ok else "FAIL", r.data if r.ok else r.error)


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
