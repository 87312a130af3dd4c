//! Decodes a pack stream straight into a [`MemoryOdb`], resolving deltas in memory.
//!
//! gix can only index packs that are files on disk; dbuild must not write files. So the pack
//! is read as a stream (gix-pack splits it into entries and verifies its checksum), every entry
//! is inflated, and deltas are applied here. Only decompressed objects are kept: the pack bytes
//! themselves are never held in full, and delta instructions are dropped once applied.

use std::collections::HashMap;
use std::io::BufRead;

use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};
use gix_hash::ObjectId;
use gix_object::Kind as ObjKind;
use gix_pack::data::entry::Header;
use gix_pack::data::input::{BytesToEntriesIter, EntryDataMode, Mode};

use super::odb::MemoryOdb;

/// Objects this large are not pre-allocated up front: the size is declared by the server and
/// checked only after inflating.
const MAX_PREALLOC: u64 = 64 << 20;

/// A pack entry before delta resolution.
enum Slot {
    /// A whole object, already in the store.
    Done { kind: ObjKind, data: Bytes },
    /// A delta against the entry at another index.
    OfsDelta { base: usize, delta: Vec<u8> },
    /// A delta against the object with the given id.
    RefDelta { base: ObjectId, delta: Vec<u8> },
    /// Transient state while an entry is being resolved.
    Taken,
}

/// Reads a whole pack (header, entries, trailer) from `input` and returns its objects.
///
/// The trailing checksum is verified, every object id is computed from content, and a pack
/// whose deltas reference objects it does not contain (a thin pack) is rejected.
pub(crate) fn read_pack(input: impl BufRead) -> Result<MemoryOdb, String> {
    let entries = BytesToEntriesIter::new_from_header(
        input,
        Mode::Verify,
        EntryDataMode::Keep,
        gix_hash::Kind::Sha1,
    )
    .map_err(|e| format!("reading the pack header failed: {}", chain(&e)))?;

    let mut odb = MemoryOdb::default();
    let mut z = Decompress::new(true);
    let mut slots: Vec<Slot> = Vec::new();
    let mut by_offset: HashMap<u64, usize> = HashMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading the pack failed: {}", chain(&e)))?;
        let compressed = entry
            .compressed
            .as_deref()
            .ok_or("the pack reader did not keep entry data")?;
        let data = inflate(&mut z, compressed, entry.decompressed_size)?;
        let slot = match entry.header {
            Header::Commit | Header::Tree | Header::Blob | Header::Tag => {
                let kind = entry
                    .header
                    .as_kind()
                    .ok_or("pack entry without an object kind")?;
                let data = Bytes::from(data);
                odb.insert(kind, data.clone())?;
                Slot::Done { kind, data }
            }
            Header::OfsDelta { base_distance } => {
                let base = Header::verified_base_pack_offset(entry.pack_offset, base_distance)
                    .and_then(|ofs| by_offset.get(&ofs).copied())
                    .ok_or_else(|| {
                        format!(
                            "pack entry at offset {} refers to a base that is not in the pack",
                            entry.pack_offset
                        )
                    })?;
                Slot::OfsDelta { base, delta: data }
            }
            Header::RefDelta { base_id } => Slot::RefDelta {
                base: base_id,
                delta: data,
            },
        };
        by_offset.insert(entry.pack_offset, slots.len());
        slots.push(slot);
    }
    drop(by_offset);
    resolve_deltas(&mut slots, &mut odb)?;
    Ok(odb)
}

/// Applies every delta, in as many passes as ref-deltas on not-yet-resolved bases need.
fn resolve_deltas(slots: &mut [Slot], odb: &mut MemoryOdb) -> Result<(), String> {
    let mut pending: Vec<usize> = (0..slots.len())
        .filter(|&i| !matches!(slots[i], Slot::Done { .. }))
        .collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut still = Vec::new();
        for i in pending {
            if !matches!(slots[i], Slot::Done { .. }) && !resolve_one(slots, odb, i)? {
                still.push(i);
            }
        }
        if still.len() == before {
            return Err(format!(
                "the pack has {} deltas whose base objects are missing (a thin pack?)",
                still.len()
            ));
        }
        pending = still;
    }
    Ok(())
}

/// Resolves entry `i` and every delta below it in its chain. Returns `false` (changing
/// nothing) if the chain ends at a ref-delta base that is not known yet.
fn resolve_one(slots: &mut [Slot], odb: &mut MemoryOdb, i: usize) -> Result<bool, String> {
    // Walk down to a resolved base, remembering the chain; ofs-delta bases always come earlier
    // in the pack, so this terminates.
    let mut chain = vec![i];
    let (kind, mut base) = loop {
        let top = *chain.last().unwrap_or(&i);
        match &slots[top] {
            Slot::Done { kind, data } => {
                chain.pop();
                break (*kind, data.clone());
            }
            Slot::OfsDelta { base, .. } => {
                if *base >= top {
                    return Err("pack delta refers forward; the pack is corrupt".into());
                }
                chain.push(*base);
            }
            Slot::RefDelta { base, .. } => match odb.get(base) {
                Some((kind, data)) => break (*kind, data.clone()),
                None => return Ok(false),
            },
            Slot::Taken => return Err("pack delta chain loops; the pack is corrupt".into()),
        }
    };
    while let Some(j) = chain.pop() {
        let delta = match std::mem::replace(&mut slots[j], Slot::Taken) {
            Slot::OfsDelta { delta, .. } | Slot::RefDelta { delta, .. } => delta,
            other => {
                slots[j] = other;
                return Err("pack delta chain is inconsistent".into());
            }
        };
        let data = Bytes::from(apply_delta(&base, &delta)?);
        odb.insert(kind, data.clone())?;
        slots[j] = Slot::Done {
            kind,
            data: data.clone(),
        };
        base = data;
    }
    Ok(true)
}

/// Inflates one zlib stream that must produce exactly `size` bytes.
///
/// `z` is reused for every entry: a fresh decoder per entry (inflate state plus a 32 KiB
/// buffer) was two large allocations per object, which musl's allocator serves with an
/// mmap/munmap pair each, measured as most of the fetch's system time (docs/performance.md).
fn inflate(z: &mut Decompress, compressed: &[u8], size: u64) -> Result<Vec<u8>, String> {
    let corrupt = |why: String| format!("a pack entry does not inflate: {why}");
    z.reset(true);
    // One byte more than declared, so an entry that inflates to more is noticed.
    let mut out = Vec::with_capacity((size.min(MAX_PREALLOC) as usize).saturating_add(1));
    loop {
        let consumed = usize::try_from(z.total_in()).unwrap_or(usize::MAX);
        let input = compressed.get(consumed..).unwrap_or_default();
        let before = (consumed, out.len());
        let status = z
            .decompress_vec(input, &mut out, FlushDecompress::Finish)
            .map_err(|e| corrupt(e.to_string()))?;
        if status == Status::StreamEnd || out.len() as u64 > size {
            break;
        }
        if out.len() == out.capacity() {
            let room = (size + 1 - out.len() as u64).min(MAX_PREALLOC) as usize;
            out.reserve(room.max(1));
        } else if before == (z.total_in() as usize, out.len()) {
            return Err(corrupt("the compressed data ends early".into()));
        }
    }
    if out.len() as u64 != size {
        return Err(format!(
            "a pack entry inflated to {} bytes instead of {size}",
            out.len()
        ));
    }
    Ok(out)
}

/// Reads one of the delta header's variable-length sizes.
fn varint(d: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let b = *d.get(*pos).ok_or("delta header is truncated")?;
        *pos += 1;
        if shift >= 64 {
            return Err("delta header size overflows".into());
        }
        value |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// Applies a git delta (copy-from-base / insert instructions) to `base`.
fn apply_delta(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, String> {
    let corrupt = |what: &str| format!("corrupt delta in pack: {what}");
    let mut pos = 0;
    let base_size = varint(delta, &mut pos)?;
    if base_size != base.len() as u64 {
        return Err(corrupt("base size does not match"));
    }
    let size = varint(delta, &mut pos)?;
    let mut out = Vec::with_capacity(size.min(MAX_PREALLOC) as usize);
    while let Some(&cmd) = delta.get(pos) {
        pos += 1;
        if cmd & 0x80 != 0 {
            // Copy: bits 0-3 say which offset bytes follow, bits 4-6 which size bytes.
            let mut ofs = 0usize;
            let mut len = 0usize;
            for bit in 0..7 {
                if cmd & (1 << bit) != 0 {
                    let b = *delta.get(pos).ok_or_else(|| corrupt("truncated copy"))?;
                    pos += 1;
                    if bit < 4 {
                        ofs |= usize::from(b) << (8 * bit);
                    } else {
                        len |= usize::from(b) << (8 * (bit - 4));
                    }
                }
            }
            if len == 0 {
                len = 0x10000;
            }
            let end = ofs
                .checked_add(len)
                .ok_or_else(|| corrupt("copy overflows"))?;
            out.extend_from_slice(
                base.get(ofs..end)
                    .ok_or_else(|| corrupt("copy beyond base"))?,
            );
        } else if cmd != 0 {
            let end = pos + usize::from(cmd);
            out.extend_from_slice(
                delta
                    .get(pos..end)
                    .ok_or_else(|| corrupt("truncated insert"))?,
            );
            pos = end;
        } else {
            return Err(corrupt("reserved instruction 0"));
        }
        if out.len() as u64 > size {
            return Err(corrupt("result larger than declared"));
        }
    }
    if out.len() as u64 != size {
        return Err(corrupt("result size does not match"));
    }
    Ok(out)
}

/// An error and its sources on one line (gix errors keep the detail in `source()`).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_copy_and_insert() {
        let base = b"hello world";
        // base size 11, result size 10: copy "hello" (ofs 0, len 5), insert " you!".
        let delta = [11, 10, 0x80 | 0x10, 5, 5, b' ', b'y', b'o', b'u', b'!'];
        assert_eq!(apply_delta(base, &delta).unwrap(), b"hello you!");
    }

    #[test]
    fn delta_rejects_garbage() {
        let base = b"abc";
        for delta in [
            &[][..],
            &[4, 1, 1, b'x'][..],        // wrong base size
            &[3, 5, 0x80 | 0x10, 9][..], // copy beyond base
            &[3, 1, 0][..],              // reserved
            &[3, 1, 5, b'x'][..],        // truncated insert
            &[3, 2, 1, b'x'][..],        // short result
            &[0xff; 12][..],             // overflowing varint
        ] {
            assert!(apply_delta(base, delta).is_err(), "{delta:?}");
        }
    }

    #[test]
    fn garbage_pack_is_an_error() {
        assert!(read_pack(&b"PACK\0\0\0\x02\0\0\0\x01\xff\xff"[..]).is_err());
        assert!(read_pack(&b"nonsense"[..]).is_err());
        assert!(read_pack(&b""[..]).is_err());
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn inflate_reuses_one_decoder_and_checks_sizes() {
        let mut z = Decompress::new(true);
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for data in [&b""[..], b"x", b"hello hello hello", &big] {
            assert_eq!(
                inflate(&mut z, &zlib(data), data.len() as u64).unwrap(),
                data
            );
        }
        let c = zlib(b"hello world");
        assert!(inflate(&mut z, &c, 10).is_err(), "longer than declared");
        assert!(inflate(&mut z, &c, 12).is_err(), "shorter than declared");
        assert!(inflate(&mut z, &c[..c.len() - 6], 11).is_err(), "truncated");
        assert!(inflate(&mut z, b"not zlib", 3).is_err(), "garbage");
        // Still usable after errors.
        assert_eq!(inflate(&mut z, &c, 11).unwrap(), b"hello world");
    }
}
