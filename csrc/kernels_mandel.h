/*
 * kernels_mandel.h -- body of one mandel_row variant; included by
 * kernels_compute.c with MB_NAME, MB_ATTR, MB_LANES, MB_VECS defined (they
 * are undefined again at the end).  Not a public header.
 *
 * Per lane, exactly the scalar sequence documented at mc_mandelbrot in
 * kernels_compute.c; an escaped lane keeps z and its count (z stays
 * escaped, so the count is that of the scalar loop).
 */
#define MB_CAT2(a, b) a##b
#define MB_CAT(a, b) MB_CAT2(a, b)
#define MB_VD MB_CAT(MB_NAME, _vd)
#define MB_VL MB_CAT(MB_NAME, _vl)

typedef double MB_VD __attribute__((vector_size(MB_LANES * sizeof(double))));
typedef int64_t MB_VL __attribute__((vector_size(MB_LANES * sizeof(int64_t))));

MB_ATTR
static void MB_NAME(size_t width, uint32_t max_iter, double xmin, double dx, double wd,
                    double ci, uint32_t *out)
{
    MB_VD civ, four, two;
    {
        double t_ci[MB_LANES], t_four[MB_LANES], t_two[MB_LANES];
        for (int l = 0; l < MB_LANES; l++) {
            t_ci[l] = ci;
            t_four[l] = 4.0;
            t_two[l] = 2.0;
        }
        memcpy(&civ, t_ci, sizeof civ);
        memcpy(&four, t_four, sizeof four);
        memcpy(&two, t_two, sizeof two);
    }
    const size_t group = (size_t)MB_LANES * MB_VECS;
    for (size_t c0 = 0; c0 < width; c0 += group) {
        size_t m = width - c0 < group ? width - c0 : group;
        MB_VD crv[MB_VECS], zr[MB_VECS], zi[MB_VECS];
        MB_VL cnt[MB_VECS];
        for (int v = 0; v < MB_VECS; v++) {
            zr[v] = (MB_VD){ 0 };
            zi[v] = (MB_VD){ 0 };
            cnt[v] = (MB_VL){ 0 };
            double tmp[MB_LANES];
            for (int l = 0; l < MB_LANES; l++) {
                size_t k = (size_t)v * MB_LANES + (size_t)l;
                size_t col = c0 + (k < m ? k : 0);   /* idle lanes repeat a pixel */
                tmp[l] = xmin + (((double)col + 0.5) * dx) / wd;
            }
            memcpy(&crv[v], tmp, sizeof tmp);
        }
        uint32_t it = 0;
        while (it < max_iter) {
            uint32_t batch = max_iter - it < MB_BATCH ? max_iter - it : MB_BATCH;
            for (uint32_t b = 0; b < batch; b++) {
                for (int v = 0; v < MB_VECS; v++) {
                    MB_VD zr2 = zr[v] * zr[v];
                    MB_VD zi2 = zi[v] * zi[v];
                    MB_VL esc = (zr2 + zi2) > four;   /* -1 where escaped (NaN: not) */
                    MB_VL alive = ~esc;
                    MB_VD nzi = two * zr[v] * zi[v] + civ;
                    MB_VD nzr = zr2 - zi2 + crv[v];
                    zr[v] = (MB_VD)(((MB_VL)nzr & alive) | ((MB_VL)zr[v] & esc));
                    zi[v] = (MB_VD)(((MB_VL)nzi & alive) | ((MB_VL)zi[v] & esc));
                    cnt[v] -= alive;
                }
            }
            it += batch;
            /* A lane is still running iff it counted every iteration so far. */
            int64_t running = 0;
            for (int v = 0; v < MB_VECS; v++)
                for (int l = 0; l < MB_LANES; l++)
                    running |= cnt[v][l] == (int64_t)it;
            if (!running)
                break;
        }
        for (size_t k = 0; k < m; k++)
            out[c0 + k] = (uint32_t)cnt[k / MB_LANES][k % MB_LANES];
    }
}

#undef MB_VD
#undef MB_VL
#undef MB_CAT
#undef MB_CAT2
#undef MB_NAME
#undef MB_ATTR
#undef MB_LANES
#undef MB_VECS
