/*
 * args.c -- the rules for the kernels' buffer arguments, once for every binding.
 *
 * The CPython extension (PEP 3118 buffers) and the ctypes/cffi/Cython face
 * (memoryviews) describe each buffer as an mc_buf and call mc_check_args; the
 * first problem comes back as (code, argument name, detail) and
 * manycore._errors builds the exception from it.  So the same bad input gets
 * the same exception and message through every binding, by construction.
 */
#include "manycore.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MC_SUPPORTED_FORMATS "b B h H i I l L q Q f d" /* manycore._errors.SUPPORTED_FORMATS */

typedef struct {
    const char *name;
    int writable;
} buf_rule;

typedef struct {
    size_t nbufs;
    size_t ndims;
    buf_rule bufs[3];
} kernel_rule;

static const kernel_rule KERNELS[MC_K_COUNT] = {
    [MC_K_SUM] = {1, 0, {{"x", 0}}},
    [MC_K_SUM_OF_SQUARES] = {1, 0, {{"x", 0}}},
    [MC_K_MINMAX] = {1, 0, {{"x", 0}}},
    [MC_K_DOT] = {2, 0, {{"x", 0}, {"y", 0}}},
    [MC_K_HISTOGRAM] = {2, 1, {{"x", 0}, {"out", 1}}},
    [MC_K_MANDELBROT] = {1, 2, {{"out", 1}}},
    [MC_K_MATMUL] = {3, 3, {{"a", 0}, {"b", 0}, {"out", 1}}},
    [MC_K_SQUARE] = {2, 0, {{"x", 0}, {"out", 1}}},
};

size_t mc_kernel_nbufs(int kernel)
{
    return kernel >= 0 && kernel < MC_K_COUNT ? KERNELS[kernel].nbufs : 0;
}

const char *mc_kernel_buf_name(int kernel, size_t i, int *writable)
{
    if (kernel < 0 || kernel >= MC_K_COUNT || i >= KERNELS[kernel].nbufs)
        return NULL;
    if (writable)
        *writable = KERNELS[kernel].bufs[i].writable;
    return KERNELS[kernel].bufs[i].name;
}

/* ------------------------------------------------------------------ problems */
static int problem(mc_arg_problem *p, int code, const char *arg, const char *fmt, ...)
{
    p->code = code;
    p->arg = arg;
    p->detail[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->detail, sizeof p->detail, fmt, ap);
        va_end(ap);
    }
    return code;
}

static const char *format_of(const mc_buf *b)
{
    return b->format ? b->format : "B";
}

/* ------------------------------------------------------------------ one buffer */
static int is_native_order_prefix(char c)
{
    if (c == '@' || c == '=')
        return 1;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return c == '>' || c == '!';
#else
    return c == '<';
#endif
}

/* The mc_dtype of a struct-module format with this item size, or -1. */
static int parse_format(const char *fmt, size_t itemsize)
{
    if (fmt == NULL)
        return itemsize == 1 ? MC_U8 : -1;
    if (is_native_order_prefix(*fmt))
        fmt++;
    if (fmt[0] == '\0' || fmt[1] != '\0')
        return -1;
    int dt;
    switch (fmt[0]) {
    case 'b': dt = MC_I8; break;
    case 'B': dt = MC_U8; break;
    case 'h': dt = MC_I16; break;
    case 'H': dt = MC_U16; break;
    case 'i': dt = MC_I32; break;
    case 'I': dt = MC_U32; break;
    case 'l': dt = itemsize == 8 ? MC_I64 : MC_I32; break;
    case 'L': dt = itemsize == 8 ? MC_U64 : MC_U32; break;
    case 'q': dt = MC_I64; break;
    case 'Q': dt = MC_U64; break;
    case 'f': dt = MC_F32; break;
    case 'd': dt = MC_F64; break;
    default: return -1;
    }
    return mc_dtype_size(dt) == itemsize ? dt : -1;
}

static int check_buffer(mc_buf *b, const buf_rule *rule, mc_arg_problem *p)
{
    if (!b->c_contiguous)
        return problem(p, MC_ARG_NOT_CONTIGUOUS, rule->name, NULL);
    b->dtype = parse_format(b->format, b->itemsize);
    if (b->dtype < 0)
        return problem(p, MC_ARG_FORMAT, rule->name, "'%s'; supported formats: " MC_SUPPORTED_FORMATS, format_of(b));
    if (rule->writable && b->readonly)
        return problem(p, MC_ARG_READONLY, rule->name, NULL);
    if (b->nbytes > 0 && (uintptr_t)b->data % b->itemsize != 0)
        return problem(p, MC_ARG_MISALIGNED, rule->name, "%zu", b->itemsize);
    b->n = b->nbytes / b->itemsize;
    return MC_ARG_OK;
}

/* ------------------------------------------------------------------ kernel rules */
static int check_length(const mc_buf *b, const char *name, size_t expected, mc_arg_problem *p)
{
    if (b->n == expected)
        return MC_ARG_OK;
    return problem(p, MC_ARG_LENGTH, name, "%zu elements, expected %zu", b->n, expected);
}

static int overlap(const mc_buf *a, const mc_buf *b)
{
    uintptr_t a0 = (uintptr_t)a->data, b0 = (uintptr_t)b->data;
    return a->nbytes && b->nbytes && a0 < b0 + b->nbytes && b0 < a0 + a->nbytes;
}

static int check_dot(const mc_buf *x, const mc_buf *y, mc_arg_problem *p)
{
    if (x->dtype != y->dtype)
        return problem(p, MC_ARG_FORMAT_MISMATCH, "dot", "x is '%s', y is '%s'", format_of(x), format_of(y));
    return check_length(y, "y", x->n, p);
}

static int check_histogram(const mc_buf *out, uint64_t bins, mc_arg_problem *p)
{
    if (out->dtype != MC_I64)
        return problem(p, MC_ARG_FORMAT, "out", "'%s'; out must be int64 ('q', or 'l' where long is 64-bit)",
                       format_of(out));
    if (bins > SIZE_MAX)
        return problem(p, MC_ARG_TOO_BIG, "bins", "bins does not fit in memory");
    return check_length(out, "out", (size_t)bins, p);
}

static int check_mandelbrot(const mc_buf *out, uint64_t width, uint64_t height, mc_arg_problem *p)
{
    if (out->dtype != MC_U32 && out->dtype != MC_I32)
        return problem(p, MC_ARG_FORMAT, "out", "'%s'; out must be uint32 or int32 ('I', 'i')", format_of(out));
    if (width > SIZE_MAX || height > SIZE_MAX || (height != 0 && width > SIZE_MAX / height))
        return problem(p, MC_ARG_TOO_BIG, "width", "width * height does not fit in memory");
    return check_length(out, "out", (size_t)(width * height), p);
}

static int check_matmul(mc_buf *bufs, uint64_t m, uint64_t k, uint64_t n, mc_arg_problem *p)
{
    for (size_t i = 0; i < 3; i++)
        if (bufs[i].dtype != MC_F64)
            return problem(p, MC_ARG_FORMAT, KERNELS[MC_K_MATMUL].bufs[i].name,
                           "'%s'; matmul takes float64 ('d') only", format_of(&bufs[i]));
    if (m > SIZE_MAX || k > SIZE_MAX || n > SIZE_MAX || (k && m > SIZE_MAX / k) || (n && k > SIZE_MAX / n) ||
        (n && m > SIZE_MAX / n))
        return problem(p, MC_ARG_TOO_BIG, "a", "matmul dimensions do not fit in memory");
    int code;
    if ((code = check_length(&bufs[0], "a", (size_t)(m * k), p)) != MC_ARG_OK ||
        (code = check_length(&bufs[1], "b", (size_t)(k * n), p)) != MC_ARG_OK ||
        (code = check_length(&bufs[2], "out", (size_t)(m * n), p)) != MC_ARG_OK)
        return code;
    if (overlap(&bufs[2], &bufs[0]) || overlap(&bufs[2], &bufs[1]))
        return problem(p, MC_ARG_OVERLAP, "out", "it shares memory with a or b");
    return MC_ARG_OK;
}

static int check_square(const mc_buf *x, const mc_buf *out, mc_arg_problem *p)
{
    int code = check_length(out, "out", x->n, p);
    if (code != MC_ARG_OK)
        return code;
    int x_is_int = x->dtype <= MC_U64;
    if (!(out->dtype == x->dtype || out->dtype == MC_F64 ||
          (x_is_int && (out->dtype == MC_I64 || out->dtype == MC_U64))))
        return problem(p, MC_ARG_FORMAT_MISMATCH, "out", "'%s' for input '%s'; use the input's format, float64%s",
                       format_of(out), format_of(x), x_is_int ? ", int64 or uint64" : "");
    if (overlap(x, out) && !(x->data == out->data && x->itemsize == out->itemsize))
        return problem(p, MC_ARG_OVERLAP, "out", "it partly overlaps x (only exact in-place use is allowed)");
    return MC_ARG_OK;
}

int mc_check_args(int kernel, mc_buf *bufs, size_t nbufs, const uint64_t *dims, size_t ndims,
                  mc_arg_problem *p)
{
    if (p == NULL)
        return MC_EINVAL;
    problem(p, MC_ARG_OK, "", NULL);
    if (kernel < 0 || kernel >= MC_K_COUNT || nbufs != KERNELS[kernel].nbufs || bufs == NULL ||
        ndims != KERNELS[kernel].ndims || (ndims && dims == NULL))
        return MC_EINVAL;
    for (size_t i = 0; i < nbufs; i++) {
        int code = check_buffer(&bufs[i], &KERNELS[kernel].bufs[i], p);
        if (code != MC_ARG_OK)
            return code;
    }
    switch (kernel) {
    case MC_K_MINMAX:
        if (bufs[0].n == 0)
            return problem(p, MC_ARG_EMPTY, "x", "minmax needs at least one element");
        return MC_ARG_OK;
    case MC_K_DOT: return check_dot(&bufs[0], &bufs[1], p);
    case MC_K_HISTOGRAM: return check_histogram(&bufs[1], dims[0], p);
    case MC_K_MANDELBROT: return check_mandelbrot(&bufs[0], dims[0], dims[1], p);
    case MC_K_MATMUL: return check_matmul(bufs, dims[0], dims[1], dims[2], p);
    case MC_K_SQUARE: return check_square(&bufs[0], &bufs[1], p);
    default: return MC_ARG_OK;
    }
}
