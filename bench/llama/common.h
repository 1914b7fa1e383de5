// What the harnesses share: a clock, and ggml's Q8_K block (the layout of ggml-common.h), the
// quantised activations every K-quant kernel takes.
#pragma once

#include <chrono>
#include <cstdint>

struct block_q8_K {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
};

static double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
