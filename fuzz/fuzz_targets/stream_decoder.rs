//! The engine's message stream, split into chunks at fuzzer-chosen places: never a panic, and
//! the messages do not depend on where the chunks were cut.
#![no_main]
use dbuild::engine::stream::{Decoder, Message};
use libfuzzer_sys::fuzz_target;

// Messages are compared as values, not as their `Debug` text: formatting floats inside `aux`
// is core's code, not dbuild's, and its thousands of branches kept the coverage count creeping
// up for hours without exercising the decoder any further.
fn decode(chunks: &[&[u8]]) -> Vec<Result<Message, usize>> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.push(c);
        while let Some(m) = d.next_message() {
            out.push(m.map_err(|e| e.len));
        }
    }
    if let Some(m) = d.finish() {
        out.push(m.map_err(|e| e.len));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let cut = data[0] as usize % data.len();
    let body = &data[1..];
    let cut = cut.min(body.len());
    assert_eq!(decode(&[body]), decode(&[&body[..cut], &body[cut..]]));
});
