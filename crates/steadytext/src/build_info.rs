//! The build fingerprint: what, besides the model file and the request, decides the bytes of an
//! output. It goes into cache keys and `steadytext_info()`.

/// Version of this library.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The pinned llama.cpp binding; see the workspace Cargo.toml.
pub const LLAMA_CPP_2_VERSION: &str = "0.1.160";

/// SIMD features this build was compiled with. They change floating-point results, so they are
/// part of the fingerprint.
pub fn target_features() -> Vec<&'static str> {
    let mut features = Vec::new();
    macro_rules! probe {
        ($($f:literal),*) => { $( if cfg!(target_feature = $f) { features.push($f); } )* };
    }
    probe!(
        "sse4.2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "bmi2",
        "avx512f",
        "avx512bw",
        "avx512vnni",
        "neon"
    );
    features
}

/// One line that identifies the engine build, e.g. `steadytext/2026.11.29 llama-cpp-2/0.1.160
/// llguidance/1.9.1 x86_64 sse4.2+avx+avx2+fma+f16c+bmi2`. The constraint engine is part of it:
/// another version may admit other tokens.
pub fn fingerprint() -> String {
    format!(
        "steadytext/{VERSION} llama-cpp-2/{LLAMA_CPP_2_VERSION} {} {} {}",
        crate::structured::ENGINE,
        std::env::consts::ARCH,
        target_features().join("+")
    )
}

/// The cargo profile this was built with: `dist` (optimised, what `make install` installs) or
/// `dev`. Not part of the fingerprint: a test asserts both give the same bytes.
pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "dev"
    } else {
        "dist"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pinned_features_are_in_the_fingerprint() {
        // .cargo/config.toml pins x86-64-v3; a build without it would change outputs.
        if cfg!(target_arch = "x86_64") {
            let fp = super::fingerprint();
            assert!(
                fp.contains("avx2") && fp.contains("fma") && fp.contains("f16c"),
                "{fp}"
            );
        }
    }
}
