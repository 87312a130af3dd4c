//! BuildKit trace messages (protobuf `StatusResponse`) from arbitrary bytes: never a panic,
//! and rendering whatever decodes never panics either.
#![no_main]
use dbuild::engine::buildkit::{decode, Printer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(status) = decode(data) {
        let mut p = Printer::new();
        let _ = p.render(&status);
        let _ = p.render(&status);
    }
});
