/* ltc-edge training kernel: a dense LTC cell's semi-implicit unfolds over a whole window of
 * steps, forward (keeping each gate for the backward) and the backward in closed form.
 * The math is ltc_edge/nn/functional.py's ltc_step (semi-implicit solver), per row b:
 *     a_ij = sigmoid(sigma_ij (v_i - mu_ij))
 *     v_j <- (cmt_j v_j + ns_j + sum_i a_ij we_ij) / (cmt_j + ds_j + sum_i a_ij w_ij)      (D_j)
 * with ns = gleak*vleak + the sensory numerator, ds = gleak + the sensory denominator + eps and
 * cmt = cm / (dt / unfolds), all computed per step in torch (train/native.py); tests hold the
 * gradients to autograd's of functional.py. Built on the user's machine by train/native.py.
 *
 * Layouts (float32, row-major): ns, ds, cmt, vseq, gv, g_ns, g_ds, g_cmt [B,T,N]; h0, g_h0
 * [B,N]; mu, sg (sigma), we (w*erev), w and their gradients [N,N], pre-synaptic i by
 * post-synaptic j; saved: gates [T,U,B,N,N], vin (v before each unfold) and D [T,U,B,N]. */
#include <math.h>
#include <string.h>

/* glibc's libmvec has vector expf (8 gates per instruction with AVX2) but math.h declares it only
 * under -ffast-math, whose startup code would flush subnormal floats to zero in the whole Python
 * process: declare the vector variants here and keep IEEE arithmetic. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((__simd__("notinbranch"))) float expf(float);
#endif

void ltc_window_forward(int nthreads, int B, int T, int N, int U, const float *ns, const float *ds,
                        const float *cmt, const float *mu, const float *sg, const float *we, const float *w,
                        const float *h0, float *vseq, float *gates, float *vin, float *Dsave)
{
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int b = 0; b < B; b++) {
        float v[N], num[N], den[N];
        memcpy(v, h0 + (size_t)b * N, sizeof v);
        for (int t = 0; t < T; t++) {
            const size_t r = ((size_t)b * T + t) * N;
            for (int u = 0; u < U; u++) {
                const size_t at = ((size_t)t * U + u) * B + b;
                float *g = gates + at * N * N, *D = Dsave + at * N;
                memcpy(vin + at * N, v, sizeof v);
                memset(num, 0, sizeof num);
                memset(den, 0, sizeof den);
                for (int i = 0; i < N; i++) {
                    const float vi = v[i];
                    const float *m = mu + i * N, *s = sg + i * N, *e = we + i * N, *ww = w + i * N;
                    float *gi = g + i * N;
                    #pragma omp simd
                    for (int j = 0; j < N; j++) {
                        const float a = 1.f / (1.f + expf(-s[j] * (vi - m[j])));
                        gi[j] = a;
                        num[j] += a * e[j];
                        den[j] += a * ww[j];
                    }
                }
                for (int j = 0; j < N; j++) {
                    D[j] = cmt[r + j] + ds[r + j] + den[j];
                    v[j] = (cmt[r + j] * v[j] + ns[r + j] + num[j]) / D[j];
                }
            }
            memcpy(vseq + r, v, sizeof v);
        }
    }
}

/* gv: the loss gradient of each step's state. The [N,N] gradients are summed per row into
 * scratch [B,4,N,N], then over rows (a fixed order: the result does not depend on threads). */
void ltc_window_backward(int nthreads, int B, int T, int N, int U, const float *cmt, const float *mu,
                         const float *sg, const float *we, const float *w, const float *vseq,
                         const float *gates, const float *vin, const float *Dsave, const float *gv,
                         float *g_ns, float *g_ds, float *g_cmt, float *g_h0, float *g_mu, float *g_sg,
                         float *g_we, float *g_w, float *scratch)
{
    const size_t NN = (size_t)N * N;
    memset(scratch, 0, sizeof(float) * 4 * NN * B);
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int b = 0; b < B; b++) {
        float gh[N], gn[N], dnum[N], dden[N];
        float *pmu = scratch + 4 * NN * b, *psg = pmu + NN, *pwe = psg + NN, *pw = pwe + NN;
        memset(gh, 0, sizeof gh);
        for (int t = T - 1; t >= 0; t--) {
            const size_t r = ((size_t)b * T + t) * N;
            for (int j = 0; j < N; j++) {
                gh[j] += gv[r + j];
                g_ns[r + j] = g_ds[r + j] = g_cmt[r + j] = 0.f;
            }
            for (int u = U - 1; u >= 0; u--) {
                const size_t at = ((size_t)t * U + u) * B + b;
                const float *g = gates + at * N * N, *vi_ = vin + at * N, *D = Dsave + at * N;
                const float *vo = (u == U - 1) ? vseq + r : vin + (at + B) * N;  /* v after this unfold */
                for (int j = 0; j < N; j++) {  /* v_j = num_j / D_j */
                    dnum[j] = gh[j] / D[j];
                    dden[j] = -dnum[j] * vo[j];
                    g_cmt[r + j] += dnum[j] * vi_[j] + dden[j];
                    g_ns[r + j] += dnum[j];
                    g_ds[r + j] += dden[j];
                    gn[j] = dnum[j] * cmt[r + j];
                }
                for (int i = 0; i < N; i++) {
                    const float vi = vi_[i];
                    const float *m = mu + i * N, *s = sg + i * N, *e = we + i * N, *ww = w + i * N, *gi = g + i * N;
                    float *qmu = pmu + i * N, *qsg = psg + i * N, *qwe = pwe + i * N, *qw = pw + i * N;
                    float acc = 0.f;
                    #pragma omp simd reduction(+:acc)
                    for (int j = 0; j < N; j++) {
                        const float a = gi[j];
                        const float dz = (dnum[j] * e[j] + dden[j] * ww[j]) * a * (1.f - a);
                        qwe[j] += dnum[j] * a;
                        qw[j] += dden[j] * a;
                        qsg[j] += dz * (vi - m[j]);
                        qmu[j] -= dz * s[j];
                        acc += dz * s[j];
                    }
                    gn[i] += acc;
                }
                memcpy(gh, gn, sizeof gh);
            }
        }
        memcpy(g_h0 + (size_t)b * N, gh, sizeof gh);
    }
    float *outs[4] = {g_mu, g_sg, g_we, g_w};
    for (int q = 0; q < 4; q++)
        for (size_t k = 0; k < NN; k++) {
            float acc = 0.f;
            for (int b = 0; b < B; b++)
                acc += scratch[(4 * (size_t)b + q) * NN + k];
            outs[q][k] = acc;
        }
}
