//! The engine's message stream, split into chunks at fuzzer-chosen places: never a panic, and
//! the messages do not depend on where the chunks were cut.
#![no_main]
use dbuild::engine::stream::Decoder;
use libfuzzer_sys::fuzz_target;

fn decode(chunks: &[&[u8]]) -> Vec<String> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.push(c);
        while let Some(m) = d.next_message() {
            out.push(format!("{:?}", m.map_err(|e| e.len)));
        }
    }
    if let Some(m) = d.finish() {
        out.push(format!("{:?}", m.map_err(|e| e.len)));
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
