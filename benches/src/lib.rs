//! Benchmarks of the job platform live in `benches/`; this library holds nothing but the
//! crate that carries them. Figures are recorded in `docs/performance.md`.
