//! Any string as a git address: never a panic, and a network address is printed without any
//! userinfo (no `@` left in the printed authority).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    // A local path holds no credentials and is shown as written.
    let Some(a) = dbuild::git::Address::parse(s).ok().filter(|a| a.scheme() != dbuild::git::Scheme::File) else {
        return;
    };
    let shown = a.redacted_url();
    if let Some((_, rest)) = shown.split_once("://") {
        // RFC 3986: the authority ends at the first '/', '?' or '#'.
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        assert!(!authority.contains('@'), "userinfo shown: {shown:?}");
    }
    let _ = a.to_string();
});
