// Times llama_decode calls that carry one token from each of N sequences, each in its own KV
// stream, as the daemon's batch does (docs/batch-invariance.md, "What an eight-row call is made
// of"). With TIME_OPS=1 it also times each graph operation for two calls early and two late.
//
//   decode-calls MODEL.gguf ROWS STEPS        (THREADS=n to change the thread count, default 2)
#include "common.h"
#include "llama.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

// Per-operation time: the eval callback asks to see every node, which makes the scheduler
// compute them one at a time, each as a graph of its own (llama.cpp gives ggml no threadpool, so
// every graph starts and joins its threads): a node's time runs from its "ask" to its "observe",
// and small nodes are mostly that overhead.
static std::map<std::string, double> op_ms;
static double last_callback;
static bool profiling;

static bool on_node(ggml_tensor * t, bool ask, void *) {
    if (ask) {
        last_callback = now_ms();
        return profiling;
    }
    const double t_now = now_ms();
    // All layers together: "ffn_up-12" -> "ffn_up", "cache_k_l12 (view)" -> "cache_k_l (view)".
    std::string name;
    for (char c : std::string(t->name).substr(0, std::string(t->name).find('-'))) {
        if (c < '0' || c > '9') {
            name += c;
        }
    }
    std::string key = std::string(ggml_op_desc(t)) + " " + name;
    if (t->src[0]) {
        key += std::string(" ") + ggml_type_name(t->src[0]->type);
    }
    op_ms[key] += t_now - last_callback;
    last_callback = t_now;
    return true;
}

static void print_profile(int first_step, int calls, double whole_ms) {
    std::vector<std::pair<double, std::string>> rows;
    double total = 0;
    for (const auto & [key, ms] : op_ms) {
        rows.push_back({ms / calls, key});
        total += ms / calls;
    }
    std::sort(rows.rbegin(), rows.rend());
    printf("profile of steps %d-%d, ms per call:\n", first_step, first_step + calls - 1);
    for (size_t i = 0; i < rows.size() && i < 16; i++) {
        printf("  %7.1f  %s\n", rows[i].first, rows[i].second.c_str());
    }
    printf("  %7.1f  all operations (the whole call, profiled: %.1f)\n", total, whole_ms / calls);
    op_ms.clear();
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf ROWS STEPS\n", argv[0]);
        return 2;
    }
    const int rows = atoi(argv[2]);
    const int steps = atoi(argv[3]);
    const int threads = getenv("THREADS") ? atoi(getenv("THREADS")) : 2;
    const bool want_profile = getenv("TIME_OPS") && strcmp(getenv("TIME_OPS"), "0") != 0;
    const int prompt_tokens = 40;

    llama_backend_init();
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model || rows < 1 || rows > 8 || steps < 20) {
        fprintf(stderr, "cannot load %s, or ROWS is not 1 to 8, or STEPS is under 20\n", argv[1]);
        return 1;
    }
    // The daemon's batch context (crates/steadytext/src/batch.rs and engine.rs).
    llama_context_params params = llama_context_default_params();
    params.n_ctx = 2048 * 8;
    params.n_batch = params.n_ubatch = 512;
    params.n_seq_max = 8;
    params.kv_unified = false;
    params.n_threads = params.n_threads_batch = threads;
    params.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    params.cb_eval = want_profile ? on_node : nullptr;  // the callback changes how the graph runs
    llama_context * ctx = llama_init_from_model(model, params);
    if (!ctx) {
        fprintf(stderr, "cannot make the context\n");
        return 1;
    }

    llama_batch batch = llama_batch_init(512, 0, 8);
    auto add = [&](llama_token token, llama_pos pos, llama_seq_id seq, bool logits) {
        const int i = batch.n_tokens++;
        batch.token[i] = token;
        batch.pos[i] = pos;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = seq;
        batch.logits[i] = logits;
    };
    auto decode = [&] {
        if (llama_decode(ctx, batch) != 0) {
            fprintf(stderr, "llama_decode failed\n");
            exit(1);
        }
    };

    // Each sequence is prefilled alone, as the daemon does.
    for (int seq = 0; seq < rows; seq++) {
        batch.n_tokens = 0;
        for (int i = 0; i < prompt_tokens; i++) {
            add(100 + 7 * i + seq, i, seq, i == prompt_tokens - 1);
        }
        const double t = now_ms();
        decode();
        printf("prefill of sequence %d (%d tokens): %.1f ms\n", seq, prompt_tokens, now_ms() - t);
    }

    const int profiled[] = {10, 11, steps - 2, steps - 1};
    double window_ms = 0;  // calls not profiled, over the last 20 steps
    int window_calls = 0;
    double profiled_ms = 0;
    for (int step = 0; step < steps; step++) {
        batch.n_tokens = 0;
        for (int seq = 0; seq < rows; seq++) {
            add(200 + step + seq, prompt_tokens + step, seq, true);
        }
        profiling = want_profile && std::find(std::begin(profiled), std::end(profiled), step) != std::end(profiled);
        const double t = now_ms();
        decode();
        const double ms = now_ms() - t;
        if (profiling) {
            profiled_ms += ms;
        } else {
            window_ms += ms;
            window_calls++;
        }
        if (profiling && (step == 11 || step == steps - 1)) {
            print_profile(step - 1, 2, profiled_ms);
            profiled_ms = 0;
        }
        if ((step + 1) % 20 == 0 && window_calls > 0) {
            printf("%d rows, positions %d-%d: %.1f ms per call\n", rows, prompt_tokens + step - 19,
                   prompt_tokens + step, window_ms / window_calls);
            window_ms = 0;
            window_calls = 0;
        }
    }
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
