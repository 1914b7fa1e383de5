// Times the Q6_K products of a decode call on one thread for a matrix of Qwen2.5-Coder-1.5B's
// Q6_K ffn_down shape (8 960 x 1 536): one row through ggml_vec_dot_q6_K_q8_K, eight rows as
// llama.cpp's stock loop runs a product marked rows-alone (a block of 16 weight rows, one
// activation row at a time), and eight rows through the patch's four-row kernel
// (docs/batch-invariance.md). 28 copies of the matrix, one per layer, so the weights come from
// memory as in a decode. The values are random; the harness also checks that the four-row
// kernel gives every result the bits of the one-row kernel. AVX2 builds only.
#include "common.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

extern "C" {
void ggml_vec_dot_q6_K_q8_K(int n, float * s, size_t bs, const void * vx, size_t bx, const void * vy, size_t by, int nrc);
void ggml_vec_dot_q6_K_q8_K_x4(int n, float * s, const void * vx, const void * vy, size_t by);
}

// The layouts of ggml-common.h.
struct block_q6_K {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
};
int main() {
    const int n = 8960, nc = 1536, layers = 28, blocks = n / 256, rows = 8, block_rows = 16;
    const size_t per_layer = (size_t) nc * blocks;
    const size_t count = per_layer * layers;
    std::unique_ptr<block_q6_K[], decltype(&free)> weights(
        static_cast<block_q6_K *>(aligned_alloc(64, (count * sizeof(block_q6_K) + 63) / 64 * 64)), &free);
    for (size_t i = 0; i < count; i++) {
        block_q6_K & b = weights[i];
        b.d = 0x2000;  // a small fp16 scale, no infinities
        for (auto & x : b.ql) x = rand();
        for (auto & x : b.qh) x = rand();
        for (auto & x : b.scales) x = rand() % 64 - 32;
    }
    std::vector<block_q8_K> act((size_t) rows * blocks);
    for (auto & b : act) {
        b.d = 0.01f + (rand() % 100) * 1e-4f;
        for (auto & x : b.qs) x = rand() % 100 - 50;
        for (auto & x : b.bsums) x = rand() % 200 - 100;
    }
    const size_t row_bytes = blocks * sizeof(block_q6_K), act_bytes = blocks * sizeof(block_q8_K);
    std::vector<float> stock((size_t) rows * nc), four((size_t) rows * nc);

    int layer = 0;
    auto next_layer = [&] {
        layer = (layer + 1) % layers;
        return reinterpret_cast<const char *>(weights.get() + layer * per_layer);
    };
    auto one_row = [&](const char * w) {
        for (int r = 0; r < nc; r++) {
            ggml_vec_dot_q6_K_q8_K(n, &stock[r], 0, w + r * row_bytes, 0, act.data(), 0, 1);
        }
    };
    auto stock_rows = [&](const char * w) {
        for (int r0 = 0; r0 < nc; r0 += block_rows) {
            for (int c = 0; c < rows; c++) {
                const char * a = reinterpret_cast<const char *>(act.data()) + c * act_bytes;
                for (int r = r0; r < r0 + block_rows; r++) {
                    ggml_vec_dot_q6_K_q8_K(n, &stock[(size_t) c * nc + r], 0, w + r * row_bytes, 0, a, 0, 1);
                }
            }
        }
    };
    auto four_rows = [&](const char * w) {
        for (int r0 = 0; r0 < nc; r0 += block_rows) {
            for (int c = 0; c < rows; c += 4) {
                const char * a = reinterpret_cast<const char *>(act.data()) + c * act_bytes;
                for (int r = r0; r < r0 + block_rows; r++) {
                    float out[4];
                    ggml_vec_dot_q6_K_q8_K_x4(n, out, w + r * row_bytes, a, act_bytes);
                    for (int k = 0; k < 4; k++) four[(size_t) (c + k) * nc + r] = out[k];
                }
            }
        }
    };

    const char * w = next_layer();
    stock_rows(w);
    four_rows(w);
    if (memcmp(stock.data(), four.data(), stock.size() * sizeof(float)) != 0) {
        fprintf(stderr, "the four-row kernel's results differ from the one-row kernel's\n");
        return 1;
    }
    printf("four-row kernel: %zu results bit-identical to the one-row kernel\n", stock.size());

    // The fastest call is the kernel's cost; the mean shows how much the machine adds.
    auto time = [&](const char * name, auto call) {
        double fastest = 1e9, total = 0;
        const int calls = 4 * layers;
        for (int i = 0; i < calls; i++) {
            const char * weights_now = next_layer();
            const double t = now_ms();
            call(weights_now);
            const double ms = now_ms() - t;
            fastest = std::min(fastest, ms);
            total += ms;
        }
        printf("%-30s fastest %6.3f ms, mean %6.3f ms\n", name, fastest, total / calls);
    };
    time("one row", one_row);
    time("8 rows, one at a time (stock)", stock_rows);
    time("8 rows, four at a time", four_rows);
    return 0;
}
