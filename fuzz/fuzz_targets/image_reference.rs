//! Any string as an image reference: never a panic; an accepted one prints back to a reference
//! that parses to the same thing.
#![no_main]
use dbuild::reference::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(r) = Reference::parse(s) {
        let again = Reference::parse(&r.to_string()).expect("a printed reference parses");
        assert_eq!(r, again);
    }
});
