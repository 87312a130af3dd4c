//! Any string as a git address: never a panic, and what is printed never holds the userinfo.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(a) = dbuild::git::Address::parse(s) {
        let shown = a.to_string();
        if let Some((_, rest)) = s.split_once("://") {
            let authority = rest.split(['/', '#']).next().unwrap_or("");
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                if userinfo.len() >= 4 {
                    assert!(!shown.contains(&format!("{userinfo}@")), "userinfo shown: {shown}");
                }
            }
        }
    }
});
