# The same source as kernels, built without OpenMP: the same names.
from manycore._cy.kernels import OPENMP as OPENMP
from manycore._cy.kernels import SUM_OF_SQUARES_MAX_N as SUM_OF_SQUARES_MAX_N
from manycore._cy.kernels import compute_sum as compute_sum
from manycore._cy.kernels import default_threads as default_threads
from manycore._cy.kernels import fast_square as fast_square
from manycore._cy.kernels import mandelbrot as mandelbrot
from manycore._cy.kernels import noop as noop
from manycore._cy.kernels import resolve_threads as resolve_threads
from manycore._cy.kernels import seed_sum_of_squares as seed_sum_of_squares
from manycore._cy.kernels import sum_of_squares as sum_of_squares
from manycore._cy.kernels import sum_of_squares_tail as sum_of_squares_tail
from manycore._cy.kernels import team_size as team_size
from manycore._cy.kernels import threads_used as threads_used
