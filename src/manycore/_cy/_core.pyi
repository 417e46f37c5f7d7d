def cpu_count() -> int: ...
def simd_level() -> str: ...
def dtype_size(dtype: int) -> int: ...
def pool_create(threads: int) -> tuple[int, int, int]: ...
def pool_destroy(handle: int) -> None: ...
def pool_check(handle: int) -> int: ...

KERNELS: dict[str, int]

def check_args(
    kernel: int, specs: list[tuple[int, int, int, str, bool, bool]], dims: tuple[int, ...]
) -> tuple[int, str, str, list[tuple[int, int]]]: ...
def sum_of_squares_range(handle: int, nthreads: int, poll: bool, n: int) -> tuple[int, int]: ...
def reduce(
    is_sum: bool, handle: int, nthreads: int, poll: bool, x: memoryview, n: int, dtype: int
) -> tuple[int, int | float]: ...
def dot(
    handle: int, nthreads: int, poll: bool, x: memoryview, y: memoryview, n: int, dtype: int
) -> tuple[int, int | float]: ...
def minmax(
    handle: int, nthreads: int, poll: bool, x: memoryview, n: int, dtype: int
) -> tuple[int, tuple[int | float, int | float]]: ...
def histogram(
    handle: int,
    nthreads: int,
    poll: bool,
    x: memoryview,
    n: int,
    dtype: int,
    bins: int,
    lo: float,
    hi: float,
    out: memoryview,
) -> int: ...
def count_primes(handle: int, nthreads: int, poll: bool, n: int) -> tuple[int, int]: ...
def monte_carlo_pi(handle: int, nthreads: int, poll: bool, samples: int, seed: int) -> tuple[int, int]: ...
def mandelbrot(
    handle: int,
    nthreads: int,
    poll: bool,
    width: int,
    height: int,
    max_iter: int,
    xmin: float,
    xmax: float,
    ymin: float,
    ymax: float,
    out: memoryview,
) -> int: ...
def matmul(
    handle: int,
    nthreads: int,
    poll: bool,
    a: memoryview,
    b: memoryview,
    out: memoryview,
    m: int,
    k: int,
    n: int,
) -> int: ...
def square(
    handle: int, nthreads: int, poll: bool, x: memoryview, dtype: int, out: memoryview, out_dtype: int, n: int
) -> int: ...
def python_task_address() -> int: ...
def parallel_for(
    handle: int, nthreads: int, poll: bool, fn: int, ctx: int, n: int, grain: int, schedule: int
) -> int: ...
def bench_dispatch(handle: int, nthreads: int, iterations: int) -> tuple[int, float]: ...
