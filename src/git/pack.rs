//! Decodes a pack stream into a [`MemoryOdb`] whose blobs stay compressed until they are read.
//!
//! gix can only index packs that are files on disk; dbuild must not write files. So the pack is
//! read as a stream (gix-pack splits it into entries and verifies its checksum) and every
//! entry's zlib stream is kept as it arrived. Then, like `git index-pack`, each whole object is
//! inflated once and its delta children resolved depth first while it is at hand, which gives
//! every object its id (computed from content, so a server cannot lie about ids).
//!
//! Why blobs are not kept inflated: a checkout's files are usually several times the size of
//! their pack (79 MiB of files from a 9.6 MiB pack in the benchmark), and holding them all
//! until the tar is sent made memory grow with the checkout rather than with the pack. So
//! commits, trees, tags and tiny blobs are kept inflated (the walk and the `.gitattributes` /
//! LFS checks read them), and every other blob becomes a [`Contents`] that inflates it again
//! (with its delta chain, bases cached) when the tar stream reaches the file.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};
use gix_hash::ObjectId;
use gix_object::Kind as ObjKind;
use gix_pack::data::entry::Header;
use gix_pack::data::input::{BytesToEntriesIter, EntryDataMode, Mode};

use super::odb::MemoryOdb;
use crate::context::{Contents, Load};

/// Objects this large are not pre-allocated up front: the size is declared by the server and
/// checked only after inflating.
const MAX_PREALLOC: u64 = 64 << 20;

/// Blobs up to this size are kept inflated: the Git LFS pointer check reads every one of them
/// anyway, and their bytes cost less than loading them twice.
const INLINE_MAX: u64 = 1024;

/// Inflated delta bases kept for loading the blobs that are deltas against them, in bytes.
const BASE_CACHE: usize = 16 << 20;

/// One pack entry, as received.
struct PackEntry {
    /// Its zlib stream (the object, or the delta instructions).
    compressed: Box<[u8]>,
    /// Size of what the zlib stream inflates to, as the entry's header declares.
    inflated: u64,
    /// The entry this one is a delta against; `None` for a whole object.
    base: Option<usize>,
    /// The object's kind; for deltas, known once resolved.
    kind: Option<ObjKind>,
    /// Whether other entries are deltas against this one (worth caching when loaded).
    is_base: bool,
}

/// A received pack: every entry compressed, plus what lazy loads share.
pub(crate) struct Pack {
    entries: Vec<PackEntry>,
    state: Mutex<LoadState>,
}

/// What loads reuse, behind one lock (loads from one pack are sequential in practice: one tar
/// stream reads them in order).
struct LoadState {
    z: Decompress,
    cache: BaseCache,
}

/// Inflated delta bases, least recently used evicted first, bounded by `limit` bytes.
struct BaseCache {
    objects: HashMap<usize, (Bytes, u64)>,
    bytes: usize,
    tick: u64,
    limit: usize,
}

impl BaseCache {
    fn new(limit: usize) -> Self {
        BaseCache {
            objects: HashMap::new(),
            bytes: 0,
            tick: 0,
            limit,
        }
    }

    fn get(&mut self, i: usize) -> Option<Bytes> {
        self.tick += 1;
        let tick = self.tick;
        self.objects.get_mut(&i).map(|(b, t)| {
            *t = tick;
            b.clone()
        })
    }

    fn put(&mut self, i: usize, data: Bytes) {
        if data.len() > self.limit / 4 || self.objects.contains_key(&i) {
            return;
        }
        while self.bytes + data.len() > self.limit {
            let Some((&old, _)) = self.objects.iter().min_by_key(|(_, (_, t))| *t) else {
                break;
            };
            if let Some((b, _)) = self.objects.remove(&old) {
                self.bytes -= b.len();
            }
        }
        self.tick += 1;
        self.bytes += data.len();
        self.objects.insert(i, (data, self.tick));
    }
}

impl Pack {
    /// The inflated, undeltified object at entry `i`: its delta chain is walked down to the
    /// nearest cached base or whole object, then the deltas are applied on the way back up.
    fn object(&self, i: usize) -> Result<Bytes, String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let LoadState { z, cache } = &mut *state;
        let mut chain = Vec::new();
        let mut cur = i;
        let mut data = loop {
            if let Some(b) = cache.get(cur) {
                break b;
            }
            let e = self.entries.get(cur).ok_or("object index out of range")?;
            match e.base {
                None => {
                    let b = Bytes::from(inflate(z, &e.compressed, e.inflated)?);
                    if e.is_base {
                        cache.put(cur, b.clone());
                    }
                    break b;
                }
                Some(base) => {
                    if chain.len() > self.entries.len() {
                        return Err("pack delta chain loops".into());
                    }
                    chain.push(cur);
                    cur = base;
                }
            }
        };
        while let Some(j) = chain.pop() {
            let e = &self.entries[j];
            let delta = inflate(z, &e.compressed, e.inflated)?;
            data = Bytes::from(apply_delta(&data, &delta)?);
            if e.is_base {
                cache.put(j, data.clone());
            }
        }
        Ok(data)
    }
}

impl Load for Pack {
    fn load(&self, key: usize) -> Result<Bytes, String> {
        self.object(key)
    }
}

/// Reads a whole pack (header, entries, trailer) from `input` and returns its objects.
///
/// The trailing checksum is verified, every object id is computed from content, and a pack
/// whose deltas reference objects it does not contain (a thin pack) is rejected.
pub(crate) fn read_pack(input: impl BufRead) -> Result<MemoryOdb, String> {
    read_pack_cached(input, BASE_CACHE)
}

/// [`read_pack`] with a base cache of `cache_bytes` for the loads that follow.
fn read_pack_cached(input: impl BufRead, cache_bytes: usize) -> Result<MemoryOdb, String> {
    let stream = BytesToEntriesIter::new_from_header(
        input,
        Mode::Verify,
        EntryDataMode::Keep,
        gix_hash::Kind::Sha1,
    )
    .map_err(|e| format!("reading the pack header failed: {}", chain(&e)))?;

    let mut entries: Vec<PackEntry> = Vec::new();
    let mut by_offset: HashMap<u64, usize> = HashMap::new();
    // Deltas whose base is named by id: resolved once an object with that id turns up.
    let mut ref_deltas: HashMap<ObjectId, Vec<usize>> = HashMap::new();
    for entry in stream {
        let entry = entry.map_err(|e| format!("reading the pack failed: {}", chain(&e)))?;
        let i = entries.len();
        let (kind, base) = match entry.header {
            Header::Commit | Header::Tree | Header::Blob | Header::Tag => (
                Some(
                    entry
                        .header
                        .as_kind()
                        .ok_or("pack entry without an object kind")?,
                ),
                None,
            ),
            Header::OfsDelta { base_distance } => {
                let base = Header::verified_base_pack_offset(entry.pack_offset, base_distance)
                    .and_then(|ofs| by_offset.get(&ofs).copied())
                    .ok_or_else(|| {
                        format!(
                            "pack entry at offset {} refers to a base that is not in the pack",
                            entry.pack_offset
                        )
                    })?;
                (None, Some(base))
            }
            Header::RefDelta { base_id } => {
                ref_deltas.entry(base_id).or_default().push(i);
                (None, None)
            }
        };
        by_offset.insert(entry.pack_offset, i);
        let compressed = entry
            .compressed
            .ok_or("the pack reader did not keep entry data")?
            .into_boxed_slice();
        entries.push(PackEntry {
            compressed,
            inflated: entry.decompressed_size,
            base,
            kind,
            is_base: false,
        });
    }
    drop(by_offset);
    resolve(entries, ref_deltas, cache_bytes)
}

/// Inflates every object once, computing ids: whole objects first, each followed depth first by
/// the deltas against it, so a base is inflated once however many deltas use it.
fn resolve(
    mut entries: Vec<PackEntry>,
    mut ref_deltas: HashMap<ObjectId, Vec<usize>>,
    cache_bytes: usize,
) -> Result<MemoryOdb, String> {
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if let Some(b) = e.base {
            children.entry(b).or_default().push(i);
        }
    }
    let mut z = Decompress::new(true);
    // (entry, kind, id, size, data) for each object resolved; data is `None` for the blobs that
    // stay compressed.
    let mut found: Vec<(usize, ObjKind, ObjectId, u64, Option<Bytes>)> = Vec::new();
    let mut resolved = 0usize;
    // Whole objects, decided before resolving marks any delta with its kind.
    let roots: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].kind.is_some())
        .collect();
    for root in roots {
        let Some(kind) = entries[root].kind else {
            continue;
        };
        let data = Bytes::from(inflate(
            &mut z,
            &entries[root].compressed,
            entries[root].inflated,
        )?);
        // Depth-first: each frame is an object (entry, bytes) and the deltas against it still
        // to resolve.
        let mut stack: Vec<(usize, Bytes, Vec<usize>)> = Vec::new();
        let mut next = Some((root, data));
        loop {
            if let Some((i, data)) = next.take() {
                let id = gix_object::compute_hash(gix_hash::Kind::Sha1, kind, &data)
                    .map_err(|e| format!("hashing an object failed: {e}"))?;
                entries[i].kind = Some(kind);
                resolved += 1;
                let mut kids = children.remove(&i).unwrap_or_default();
                kids.extend(ref_deltas.remove(&id).unwrap_or_default());
                if !kids.is_empty() {
                    entries[i].is_base = true;
                }
                let keep = kind != ObjKind::Blob || data.len() as u64 <= INLINE_MAX;
                found.push((i, kind, id, data.len() as u64, keep.then(|| data.clone())));
                stack.push((i, data, kids));
            }
            let Some((parent, base, kids)) = stack.last_mut() else {
                break;
            };
            match kids.pop() {
                Some(c) => {
                    if entries[c].kind.is_some() {
                        return Err("pack delta chain loops; the pack is corrupt".into());
                    }
                    // Ref-deltas learn their base's entry here, for loading them later.
                    entries[c].base = Some(*parent);
                    let delta = inflate(&mut z, &entries[c].compressed, entries[c].inflated)?;
                    next = Some((c, Bytes::from(apply_delta(base, &delta)?)));
                }
                None => {
                    stack.pop();
                }
            }
        }
    }
    if resolved != entries.len() {
        return Err(format!(
            "the pack has {} deltas whose base objects are missing (a thin pack?)",
            entries.len() - resolved
        ));
    }
    let pack = Arc::new(Pack {
        entries,
        state: Mutex::new(LoadState {
            z,
            cache: BaseCache::new(cache_bytes),
        }),
    });
    let mut odb = MemoryOdb::default();
    for (i, kind, id, len, data) in found {
        match data {
            Some(data) => odb.insert_known(id, kind, data),
            None => {
                let source: Arc<dyn Load> = pack.clone();
                odb.insert_blob(id, Contents::lazy(len, source, i));
            }
        }
    }
    Ok(odb)
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
    use crate::git::odb::Objects;

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

    /// Every object of `git cat-file --batch-all-objects --batch` in `repo`: (id, kind, bytes).
    fn git_objects(repo: &std::path::Path) -> Vec<(ObjectId, String, Vec<u8>)> {
        let out = std::process::Command::new("git")
            .args(["cat-file", "--batch-all-objects", "--batch"])
            .current_dir(repo)
            .output()
            .unwrap();
        let mut rest = &out.stdout[..];
        let mut objects = Vec::new();
        while !rest.is_empty() {
            let nl = rest.iter().position(|b| *b == b'\n').unwrap();
            let head = std::str::from_utf8(&rest[..nl]).unwrap().to_owned();
            let mut f = head.split(' ');
            let id = ObjectId::from_hex(f.next().unwrap().as_bytes()).unwrap();
            let kind = f.next().unwrap().to_owned();
            let size: usize = f.next().unwrap().parse().unwrap();
            objects.push((id, kind, rest[nl + 1..nl + 1 + size].to_vec()));
            rest = &rest[nl + 2 + size..];
        }
        objects
    }

    fn git(repo: &std::path::Path, args: &[&str]) -> Vec<u8> {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(repo)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {:?}", out);
        out.stdout
    }

    /// A real pack full of delta chains (ofs and ref deltas), read with a base cache of every
    /// size from none to plenty: every blob loads lazily to exactly git's bytes, every other
    /// object is there inflated, and blobs bigger than `INLINE_MAX` are not held inflated.
    #[test]
    fn lazy_blobs_match_git_with_any_cache() {
        let dir = std::env::temp_dir().join(format!("dbuild-pack-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q"]);
        // Versions of one growing file in several commits and near-copies side by side: git
        // deltifies them against each other in chains.
        let mut text = String::new();
        for commit in 0..6 {
            for line in 0..400 {
                text.push_str(&format!(
                    "commit {commit} line {line} some repeated words here\n"
                ));
            }
            for copy in 0..4 {
                let mut t = text.clone();
                t.push_str(&format!("copy {copy}\n"));
                std::fs::write(dir.join(format!("f{copy}.txt")), t).unwrap();
            }
            std::fs::write(dir.join("small.txt"), format!("small {commit}\n")).unwrap();
            git(&dir, &["add", "-A"]);
            git(&dir, &["commit", "-q", "-m", &format!("c{commit}")]);
        }
        let objects = git_objects(&dir);
        let list: String = objects.iter().map(|(id, ..)| format!("{id}\n")).collect();
        // Without --delta-base-offset git writes ref-deltas (base named by id), with it
        // ofs-deltas (base named by position), as servers do.
        let packs: Vec<Vec<u8>> = [&[][..], &["--delta-base-offset"][..]]
            .iter()
            .map(|extra| {
                let mut child = std::process::Command::new("git")
                    .args(["pack-objects", "--stdout", "--depth=10"])
                    .args(*extra)
                    .current_dir(&dir)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                std::io::Write::write_all(child.stdin.as_mut().unwrap(), list.as_bytes()).unwrap();
                drop(child.stdin.take());
                child.wait_with_output().unwrap().stdout
            })
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        for (pack, want_ofs) in packs.iter().zip([false, true]) {
            check_pack(pack, &objects, want_ofs);
        }
    }

    fn check_pack(pack: &[u8], objects: &[(ObjectId, String, Vec<u8>)], want_ofs: bool) {
        let ofs = |h: &Header| matches!(h, Header::OfsDelta { .. });
        let deltas: Vec<bool> = {
            let entries = BytesToEntriesIter::new_from_header(
                pack,
                Mode::Verify,
                EntryDataMode::Keep,
                gix_hash::Kind::Sha1,
            )
            .unwrap();
            entries
                .map(|e| e.unwrap().header)
                .filter(|h| h.is_delta())
                .map(|h| ofs(&h))
                .collect()
        };
        assert!(
            deltas.len() > 10,
            "the fixture should be full of deltas: {deltas:?}"
        );
        assert!(deltas.iter().all(|o| *o == want_ofs), "{deltas:?}");

        for cache in [0, 4 << 10, 64 << 10, BASE_CACHE] {
            let odb = read_pack_cached(pack, cache).unwrap();
            // Load in reverse pack order too, so chains are walked from their far end.
            for (id, kind, want) in objects.iter().rev() {
                let (k, got) = odb.find(id).unwrap().unwrap();
                assert_eq!(k.to_string(), *kind, "{id}");
                assert_eq!(&got[..], &want[..], "{id} with a {cache}-byte cache");
                if kind == "blob" {
                    let c = odb.blob(id).unwrap();
                    assert_eq!(c.len(), want.len() as u64);
                    assert_eq!(
                        c.in_memory().is_some(),
                        want.len() as u64 <= INLINE_MAX,
                        "{id}: {} bytes",
                        want.len()
                    );
                    assert_eq!(&c.load().unwrap()[..], &want[..]);
                }
            }
        }
    }

    #[test]
    fn base_cache_evicts_least_recently_used_within_its_limit() {
        let mut c = BaseCache::new(400);
        for i in 0..4 {
            c.put(i, Bytes::from(vec![i as u8; 100]));
        }
        assert!(c.get(0).is_some(), "0 used again, so 1 is now the oldest");
        c.put(4, Bytes::from(vec![4; 100]));
        assert!(c.get(1).is_none());
        assert!(c.get(0).is_some() && c.get(4).is_some());
        assert!(c.bytes <= 400);
        c.put(9, Bytes::from(vec![9; 101]));
        assert!(
            c.get(9).is_none(),
            "over a quarter of the limit: not cached"
        );
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
