//! Arbitrary `.dockerignore` text against arbitrary paths: parsing, matching and filtering a
//! tree never panic, and filtering never adds a path that was not in the tree.
#![no_main]
use bytes::Bytes;
use dbuild::context::ignore::DockerIgnore;
use dbuild::context::{Entry, Kind, Tree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First line: paths separated by '|'; the rest: the .dockerignore text.
    let (head, text) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(ignore) = DockerIgnore::parse(text) else { return };
    let mut entries = vec![Entry { path: b"Dockerfile".to_vec(), kind: Kind::File { data: Bytes::new().into(), executable: false } }];
    for p in head.split(|b| *b == b'|') {
        let _ = ignore.matches(p);
        entries.push(Entry { path: p.to_vec(), kind: Kind::File { data: Bytes::new().into(), executable: false } });
    }
    let Ok(tree) = Tree::from_entries(0, entries) else { return };
    if let Ok(out) = ignore.filter(tree.clone(), "Dockerfile") {
        for e in out.entries() {
            assert!(tree.get(&e.path).is_some(), "filter invented {:?}", e.path);
        }
    }
});
