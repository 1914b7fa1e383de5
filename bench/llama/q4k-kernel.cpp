// Times the repacked Q4_K kernels on one thread for a matrix of Qwen2.5-Coder-1.5B's ffn_gate
// shape (1 536 x 8 960): GEMV for one row, the patch's rows-alone kernel for 4 and 8 rows, and
// llama.cpp's own four-row GEMM for 8 (docs/batch-invariance.md). 28 copies of the matrix, one
// per layer, so the weights come from memory as in a decode. The values are random: the
// kernels have no data-dependent branches, so only their time matters here. The rows-alone
// kernel exists on AVX2 builds only (the pinned x86-64-v3 one).
#include "common.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

extern "C" {
void ggml_gemv_q4_K_8x8_q8_K(int n, float * s, size_t bs, const void * vx, const void * vy, int nr, int nc);
void ggml_gemm_q4_K_8x8_q8_K(int n, float * s, size_t bs, const void * vx, const void * vy, int nr, int nc);
void ggml_gemm_q4_K_8x8_q8_K_rows_alone(int n, float * s, size_t bs, const void * vx, const void * vy, int nr, int nc);
}

// The layouts of ggml-cpu/repack.h: eight Q4_K columns interleaved, four Q8_K rows interleaved.
struct block_q4_Kx8 {
    uint16_t d[8], dmin[8];
    uint8_t scales[96];
    uint8_t qs[1024];
};
struct block_q8_Kx4 {
    float d[4];
    int8_t qs[1024];
    int16_t bsums[64];
};
int main() {
    const int n = 1536, nc = 8960, layers = 28, blocks = n / 256;
    const size_t per_layer = (size_t) nc / 8 * blocks;
    // 64-byte aligned, as llama.cpp's repacked buffers are (a block is 18 cache lines).
    const size_t count = per_layer * layers;
    std::unique_ptr<block_q4_Kx8[], decltype(&free)> weights(
        static_cast<block_q4_Kx8 *>(aligned_alloc(64, count * sizeof(block_q4_Kx8))), &free);
    for (size_t i = 0; i < count; i++) {
        block_q4_Kx8 & b = weights[i];
        std::fill(std::begin(b.d), std::end(b.d), 0x2000);  // small fp16 scales, no infinities
        std::fill(std::begin(b.dmin), std::end(b.dmin), 0x1000);
        for (auto & x : b.scales) x = rand() & 0x3f;
        for (auto & x : b.qs) x = rand();
    }
    std::vector<block_q8_Kx4> rows4(2 * blocks);
    for (auto & b : rows4) {
        std::fill(std::begin(b.d), std::end(b.d), 0.01f);
        for (auto & x : b.qs) x = rand() % 100 - 50;
        for (auto & x : b.bsums) x = rand() % 200 - 100;
    }
    std::vector<block_q8_K> row1(blocks);
    for (auto & b : row1) {
        b.d = 0.01f;
        for (auto & x : b.qs) x = rand() % 100 - 50;
        for (auto & x : b.bsums) x = rand() % 200 - 100;
    }
    std::vector<float> out((size_t) 8 * nc);

    int layer = 0;
    auto next_layer = [&] {
        layer = (layer + 1) % layers;
        return weights.get() + layer * per_layer;
    };
    // The fastest call is the kernel's cost; the mean shows how much the machine adds.
    auto time = [&](const char * name, auto call) {
        double fastest = 1e9, total = 0;
        const int calls = 4 * layers;
        for (int i = 0; i < calls; i++) {
            const double t = now_ms();
            call();
            const double ms = now_ms() - t;
            fastest = std::min(fastest, ms);
            total += ms;
        }
        printf("%-26s fastest %6.3f ms, mean %6.3f ms\n", name, fastest, total / calls);
    };
    time("GEMV, 1 row", [&] { ggml_gemv_q4_K_8x8_q8_K(n, out.data(), nc, next_layer(), row1.data(), 1, nc); });
    time("rows alone, 4 rows", [&] { ggml_gemm_q4_K_8x8_q8_K_rows_alone(n, out.data(), nc, next_layer(), rows4.data(), 4, nc); });
    time("rows alone, 8 rows", [&] { ggml_gemm_q4_K_8x8_q8_K_rows_alone(n, out.data(), nc, next_layer(), rows4.data(), 8, nc); });
    time("llama.cpp GEMM, 8 rows", [&] { ggml_gemm_q4_K_8x8_q8_K(n, out.data(), nc, next_layer(), rows4.data(), 8, nc); });
    return 0;
}
