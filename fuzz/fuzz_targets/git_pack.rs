//! Pack streams as a hostile git server could send them: the input describes entries (whole
//! objects, ofs-deltas, ref-deltas with any base, chains, loops, wrong sizes), this target
//! compresses them and adds a valid header and checksum (which random bytes would never have),
//! and the pack is read as a fetch reads it. Never a panic; whatever is accepted loads back to
//! exactly the bytes its id was computed from, however it was deltified.
#![no_main]
use std::io::Write;

use libfuzzer_sys::fuzz_target;

// Stored (uncompressed) zlib blocks: compressing is this harness's work, not dbuild's, and a
// `-print_pcs` run showed most late edges inside the harness's own deflate.
fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::none());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An entry header: type and inflated size, 4 bits then 7 bits per byte.
fn header(out: &mut Vec<u8>, kind: u8, mut size: usize) {
    let mut b = (kind << 4) | (size & 15) as u8;
    size >>= 4;
    while size > 0 {
        out.push(b | 0x80);
        b = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(b);
}

/// An ofs-delta's distance back to its base, in git's offset encoding.
fn offset(out: &mut Vec<u8>, mut ofs: u64) {
    let mut buf = vec![(ofs & 127) as u8];
    ofs >>= 7;
    while ofs > 0 {
        ofs -= 1;
        buf.push(0x80 | (ofs & 127) as u8);
        ofs >>= 7;
    }
    buf.reverse();
    out.extend_from_slice(&buf);
}

fn object_id(kind: u8, data: &[u8]) -> [u8; 20] {
    let name = ["", "commit", "tree", "blob", "tag"][kind as usize];
    let mut h = sha1_smol::Sha1::new();
    h.update(format!("{name} {}\0", data.len()).as_bytes());
    h.update(data);
    h.digest().bytes()
}

fuzz_target!(|data: &[u8]| {
    // Records separated by 0xFF: [selector, argument, payload...].
    let mut entries = Vec::new();
    let mut offsets: Vec<u64> = Vec::new();
    let mut ids: Vec<[u8; 20]> = Vec::new();
    let mut body = Vec::new();
    for rec in data.split(|b| *b == 0xFF).take(64) {
        let (Some(&sel), Some(&arg)) = (rec.first(), rec.get(1)) else { continue };
        let payload = &rec[2..];
        let here = 12 + body.len() as u64;
        let mut e = Vec::new();
        match sel % 8 {
            k @ 0..=3 => {
                let kind = k + 1; // commit, tree, blob, tag
                header(&mut e, kind, payload.len());
                ids.push(object_id(kind, payload));
            }
            4 | 5 if !offsets.is_empty() => {
                // ofs-delta against an earlier entry (arg picks which; 5 also lies about it).
                let base = offsets[arg as usize % offsets.len()];
                header(&mut e, 6, payload.len());
                offset(&mut e, (here - base).saturating_add(u64::from(sel % 8 == 5)));
                ids.push([0; 20]);
            }
            6 if !ids.is_empty() => {
                // ref-delta naming an earlier whole object's id (or a delta's placeholder).
                header(&mut e, 7, payload.len());
                e.extend_from_slice(&ids[arg as usize % ids.len()]);
                ids.push([0; 20]);
            }
            _ => {
                // ref-delta naming an id given by the input (usually absent: a thin pack).
                header(&mut e, 7, payload.len());
                let mut id = [arg; 20];
                id[..payload.len().min(20)].copy_from_slice(&payload[..payload.len().min(20)]);
                e.extend_from_slice(&id);
                ids.push([0; 20]);
            }
        }
        e.extend_from_slice(&zlib(payload));
        offsets.push(here);
        body.extend_from_slice(&e);
        entries.push(());
    }
    let mut pack = b"PACK\0\0\0\x02".to_vec();
    pack.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    pack.extend_from_slice(&body);
    let mut h = sha1_smol::Sha1::new();
    h.update(&pack);
    pack.extend_from_slice(&h.digest().bytes());
    // Errors are fine (a bad delta, a missing base); a panic or a wrong load is not.
    let _ = dbuild::git::fuzz_read_pack(&pack);
});
