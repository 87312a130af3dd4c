//! The deterministic tar stream sent as the `/build` request body.
//!
//! Why hand-assembled instead of `tar::Builder`: the builder writes into an `io::Write`, which
//! would force every file's bytes through a copy. Here headers and padding are small buffers,
//! file contents are the tree's own [`Bytes`] handed on by reference count, and the stream is
//! produced one chunk at a time as the socket takes it, so memory for the stream itself stays
//! O(one chunk) whatever the size of the context. Contents that are not in memory yet (blobs of
//! a fetched pack, see [`Contents`](super::Contents)) are loaded when the stream reaches them and
//! dropped once sent, so a checkout never needs its whole decompressed tree at once.
//!
//! Determinism: entries in path order, every mtime the tree's `mtime`, uid/gid 0, no user or
//! group names, modes 0644/0755 (files), 0755 (directories), 0777 (symlinks). Paths or link
//! targets that do not fit the ustar fields, and sizes of 8 GiB and more, get a PAX header.

use std::collections::VecDeque;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use flate2::write::GzEncoder;
use http_body::{Frame, SizeHint};
use tar::{EntryType, Header};

use super::tree::{Kind, Tree};
use super::Error;

const BLOCK: usize = 512;
/// Small pieces are coalesced into chunks of about this size; larger file contents are passed
/// through as they are (no copy).
const CHUNK: usize = 64 * 1024;
/// File contents at least this large are sent as their own shared buffer instead of copied.
const ZERO_COPY_MIN: usize = 16 * 1024;
/// Largest size the ustar size field (11 octal digits) holds.
const USTAR_MAX_SIZE: u64 = 0o77777777777;

/// How the tar stream is made. The default is a plain tar: on a unix socket compression costs
/// more CPU than it saves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TarOptions {
    /// gzip the stream at this level (0-9); `None` sends a plain tar.
    pub gzip_level: Option<u32>,
}

/// Produces the tar's bytes lazily, one chunk per [`Iterator::next`].
struct TarChunks {
    tree: Tree,
    next_entry: usize,
    /// Pieces ready to be emitted, in order.
    ready: VecDeque<Bytes>,
    /// Small pieces being coalesced.
    buf: BytesMut,
    done: bool,
    /// Set when a file's contents could not be loaded; the stream ends with it.
    error: Option<Error>,
}

impl TarChunks {
    fn new(tree: Tree) -> Self {
        TarChunks {
            tree,
            next_entry: 0,
            ready: VecDeque::new(),
            buf: BytesMut::new(),
            done: false,
            error: None,
        }
    }

    fn flush_buf(&mut self) {
        if !self.buf.is_empty() {
            self.ready.push_back(self.buf.split().freeze());
        }
    }

    /// Appends the pieces of the next entry (or the end-of-archive blocks) to `ready`/`buf`.
    fn step(&mut self) {
        let Some(entry) = self.tree.entries().get(self.next_entry) else {
            self.buf.extend_from_slice(&[0u8; 2 * BLOCK]);
            self.flush_buf();
            self.done = true;
            return;
        };
        self.next_entry += 1;
        let contents = match &entry.kind {
            Kind::File { data, .. } => match data.load() {
                Ok(b) => Some(b),
                Err(e) => {
                    self.error = Some(e);
                    self.done = true;
                    return;
                }
            },
            _ => None,
        };
        let size = contents.as_ref().map_or(0, |b| b.len() as u64);
        write_headers(
            &mut self.buf,
            &entry.path,
            &entry.kind,
            size,
            self.tree.mtime,
        );
        if let Some(data) = contents {
            if data.len() >= ZERO_COPY_MIN {
                self.flush_buf();
                self.ready.push_back(data);
            } else {
                self.buf.extend_from_slice(&data);
            }
            pad(&mut self.buf, size);
        }
        if self.buf.len() >= CHUNK {
            self.flush_buf();
        }
    }
}

/// Writes the header block(s) of one entry: a PAX extended header first when the path, the
/// link target or the size does not fit ustar's fields, then the ustar header.
fn write_headers(out: &mut BytesMut, path: &[u8], kind: &Kind, size: u64, mtime: u64) {
    let mut header = Header::new_ustar();
    let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut name = path.to_vec();
    match kind {
        Kind::Dir => {
            name.push(b'/');
            header.set_entry_type(EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
        }
        Kind::File { executable, .. } => {
            header.set_entry_type(EntryType::Regular);
            header.set_mode(if *executable { 0o755 } else { 0o644 });
            header.set_size(size);
            if size > USTAR_MAX_SIZE {
                pax.push(("size", size.to_string().into_bytes()));
            }
        }
        Kind::Symlink { target } => {
            header.set_entry_type(EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            let n = target.len().min(100);
            header.as_old_mut().linkname[..n].copy_from_slice(&target[..n]);
            if target.len() > 100 {
                pax.push(("linkpath", target.clone()));
            }
        }
    }
    let n = name.len().min(100);
    header.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    if name.len() > 100 {
        pax.push(("path", name));
    }
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_cksum();

    if !pax.is_empty() {
        let records = pax_records(&pax);
        let mut ph = Header::new_ustar();
        let pname = b"././@PaxHeader";
        ph.as_old_mut().name[..pname.len()].copy_from_slice(pname);
        ph.set_entry_type(EntryType::XHeader);
        ph.set_mode(0o644);
        ph.set_uid(0);
        ph.set_gid(0);
        ph.set_mtime(mtime);
        ph.set_size(records.len() as u64);
        ph.set_cksum();
        out.extend_from_slice(ph.as_bytes());
        out.extend_from_slice(&records);
        pad(out, records.len() as u64);
    }
    out.extend_from_slice(header.as_bytes());
}

/// Zero bytes up to the next 512-byte block boundary after `len` bytes of data.
fn pad(out: &mut BytesMut, len: u64) {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        out.extend_from_slice(&[0u8; BLOCK][..BLOCK - rem]);
    }
}

impl Iterator for TarChunks {
    type Item = Result<Bytes, Error>;

    fn next(&mut self) -> Option<Result<Bytes, Error>> {
        loop {
            if let Some(e) = self.error.take() {
                // Nothing after a failed entry: a tar missing a file must not look complete.
                self.ready.clear();
                return Some(Err(e));
            }
            if let Some(b) = self.ready.pop_front() {
                return Some(Ok(b));
            }
            if self.done {
                return None;
            }
            self.step();
        }
    }
}

/// Encodes PAX records: `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_records(records: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let base = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = base + 1;
        while len != base + len.to_string().len() {
            len = base + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// The build context as a stream of chunks: a plain or gzipped tar of a [`Tree`].
///
/// It is an [`Iterator`] of [`Bytes`] chunks (for writing to a file or stdout, see
/// [`TarBody::write_to`]) and an [`http_body::Body`] (for the HTTP request). It has no known
/// length, so hyper sends it with chunked transfer encoding. A chunk is an error only when a
/// file's contents cannot be loaded; the stream ends there.
pub struct TarBody {
    chunks: TarChunks,
    gzip: Option<GzEncoder<Vec<u8>>>,
}

impl TarBody {
    /// A stream over `tree` (already filtered by `.dockerignore`).
    pub fn new(tree: Tree, options: TarOptions) -> Self {
        let gzip = options.gzip_level.map(|level| {
            // mtime 0 and no file name in the gzip header keep the output deterministic.
            flate2::GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), flate2::Compression::new(level.min(9)))
        });
        TarBody {
            chunks: TarChunks::new(tree),
            gzip,
        }
    }
}

impl TarBody {
    /// Writes the whole stream to `out` and returns the number of bytes written.
    pub fn write_to(self, mut out: impl Write) -> std::io::Result<u64> {
        let mut n = 0;
        for chunk in self {
            let chunk = chunk.map_err(std::io::Error::other)?;
            out.write_all(&chunk)?;
            n += chunk.len() as u64;
        }
        Ok(n)
    }

    /// The whole stream in one buffer (for tests and small contexts).
    pub fn into_vec(self) -> Result<Vec<u8>, Error> {
        let mut v = Vec::new();
        for chunk in self {
            v.extend_from_slice(&chunk?);
        }
        Ok(v)
    }
}

impl std::fmt::Debug for TarBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarBody")
            .field("entries", &self.chunks.tree.len())
            .field("gzip", &self.gzip.is_some())
            .finish()
    }
}

impl Iterator for TarBody {
    type Item = Result<Bytes, Error>;

    fn next(&mut self) -> Option<Result<Bytes, Error>> {
        let Some(gz) = self.gzip.as_mut() else {
            return self.chunks.next();
        };
        loop {
            match self.chunks.next() {
                Some(Ok(chunk)) => {
                    // Writing into a Vec cannot fail.
                    let _ = gz.write_all(&chunk);
                    if gz.get_ref().len() >= CHUNK {
                        return Some(Ok(Bytes::from(std::mem::take(gz.get_mut()))));
                    }
                }
                Some(Err(e)) => {
                    self.gzip = None;
                    return Some(Err(e));
                }
                None => {
                    let gz = self.gzip.take()?;
                    let out = gz.finish().unwrap_or_default();
                    return (!out.is_empty()).then(|| Ok(Bytes::from(out)));
                }
            }
        }
    }
}

impl http_body::Body for TarBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        // Each chunk is cheap to produce from memory (at worst one file inflated), so it is
        // made on demand, when hyper asks.
        Poll::Ready(self.get_mut().next().map(|b| b.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Entry;

    fn tree() -> Tree {
        let long = "d/".to_string() + &"x".repeat(150);
        Tree::from_entries(
            1_700_000_000,
            vec![
                Entry {
                    path: b"d".to_vec(),
                    kind: Kind::Dir,
                },
                Entry {
                    path: long.into_bytes(),
                    kind: Kind::File {
                        data: b"long"[..].into(),
                        executable: false,
                    },
                },
                Entry {
                    path: b"run.sh".to_vec(),
                    kind: Kind::File {
                        data: b"#!/bin/sh\n"[..].into(),
                        executable: true,
                    },
                },
                Entry {
                    path: b"big".to_vec(),
                    kind: Kind::File {
                        data: vec![7u8; 100_000].into(),
                        executable: false,
                    },
                },
                Entry {
                    path: b"empty".to_vec(),
                    kind: Kind::File {
                        data: Bytes::new().into(),
                        executable: false,
                    },
                },
                Entry {
                    path: b"ln".to_vec(),
                    kind: Kind::Symlink {
                        target: b"run.sh".to_vec(),
                    },
                },
                Entry {
                    path: b"lnlong".to_vec(),
                    kind: Kind::Symlink {
                        target: "t/".repeat(80).into_bytes(),
                    },
                },
                Entry {
                    path: b"caf\xe9".to_vec(),
                    kind: Kind::File {
                        data: b"latin1 name"[..].into(),
                        executable: false,
                    },
                },
            ],
        )
        .unwrap()
    }

    fn collect(body: TarBody) -> Vec<u8> {
        body.into_vec().unwrap()
    }

    #[test]
    fn reads_back_with_the_tar_crate() {
        let bytes = collect(TarBody::new(tree(), TarOptions::default()));
        assert_eq!(bytes.len() % BLOCK, 0);
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let path = e.path_bytes().into_owned();
            let link = e.link_name_bytes().map(|l| l.into_owned());
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut content).unwrap();
            assert_eq!(h.mtime().unwrap(), 1_700_000_000);
            assert_eq!(h.uid().unwrap(), 0);
            seen.push((
                String::from_utf8_lossy(&path).into_owned(),
                h.mode().unwrap(),
                content.len(),
                link,
            ));
        }
        let t = tree();
        assert_eq!(seen.len(), t.len());
        let find = |p: &str| {
            seen.iter()
                .find(|s| s.0 == p)
                .unwrap_or_else(|| panic!("{p} missing: {seen:?}"))
        };
        assert_eq!(find("d/").1, 0o755);
        assert_eq!(find("run.sh").1, 0o755);
        assert_eq!(find("big").1, 0o644);
        assert_eq!(find("big").2, 100_000);
        assert_eq!(find("empty").2, 0);
        assert_eq!(find(&("d/".to_string() + &"x".repeat(150))).2, 4);
        assert_eq!(find("ln").3.as_deref(), Some(&b"run.sh"[..]));
        assert_eq!(
            find("lnlong").3.as_deref(),
            Some("t/".repeat(80).as_bytes())
        );
    }

    #[test]
    fn deterministic_and_gzip_roundtrips() {
        let a = collect(TarBody::new(tree(), TarOptions::default()));
        let b = collect(TarBody::new(tree(), TarOptions::default()));
        assert_eq!(a, b);
        let gz = collect(TarBody::new(
            tree(),
            TarOptions {
                gzip_level: Some(6),
            },
        ));
        let gz2 = collect(TarBody::new(
            tree(),
            TarOptions {
                gzip_level: Some(6),
            },
        ));
        assert_eq!(gz, gz2);
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
        assert_eq!(plain, a);
    }

    #[test]
    fn large_contents_are_not_copied() {
        let t = tree();
        let big = match &t.get(b"big").unwrap().kind {
            Kind::File { data, .. } => data.load().unwrap(),
            _ => unreachable!(),
        };
        let chunks: Vec<Bytes> = TarBody::new(t, TarOptions::default())
            .map(Result::unwrap)
            .collect();
        assert!(chunks
            .iter()
            .any(|c| c.as_ptr() == big.as_ptr() && c.len() == big.len()));
        assert!(chunks
            .iter()
            .all(|c| c.len() <= CHUNK + 2 * BLOCK || c.as_ptr() == big.as_ptr()));
    }

    /// Regression for the fuzzer's crash-30a3a067…: a 100-byte directory path holding a
    /// newline. With its trailing '/' the name is 101 bytes, so it must travel as a PAX
    /// `path` record whose length prefix covers the newline (readers that split PAX records
    /// at '\n', like the `tar` crate, misread it; Go's archive/tar, which the engine uses,
    /// follows the length).
    #[test]
    fn a_full_length_directory_name_with_a_newline_goes_to_pax() {
        let mut path = vec![b'a'; 100];
        path[50] = b'\n';
        let tree = Tree::from_entries(
            0,
            vec![Entry {
                path: path.clone(),
                kind: Kind::Dir,
            }],
        )
        .unwrap();
        let bytes = TarBody::new(tree, TarOptions::default())
            .into_vec()
            .unwrap();
        let mut name = path.clone();
        name.push(b'/');
        let record = pax_records(&[("path", name)]);
        assert!(
            bytes.windows(record.len()).any(|w| w == &record[..]),
            "the PAX header holds the whole name with its '/'"
        );
    }

    #[test]
    fn sizes_of_8_gib_and_more_get_a_pax_size_record() {
        let kind = Kind::File {
            data: Bytes::new().into(),
            executable: false,
        };
        let size = 9 * (1u64 << 30);
        let mut out = BytesMut::new();
        write_headers(&mut out, b"huge.bin", &kind, size, 0);
        assert_eq!(
            out.len(),
            3 * BLOCK,
            "PAX header, its records, the ustar header"
        );
        let records = &out[BLOCK..2 * BLOCK];
        assert!(
            records.starts_with(b"19 size=9663676416\n"),
            "{:?}",
            String::from_utf8_lossy(records)
        );
        // The ustar header still describes the entry (GNU base-256 size for old readers).
        let h = tar::Header::from_byte_slice(&out[2 * BLOCK..]);
        assert_eq!(h.size().unwrap(), size);
        assert_eq!(&h.path_bytes()[..], b"huge.bin");
        let mut small = BytesMut::new();
        write_headers(&mut small, b"f", &kind, USTAR_MAX_SIZE, 0);
        assert_eq!(small.len(), BLOCK, "no PAX header below 8 GiB");
    }

    /// A source of lazy contents: `key` 0 loads, 1 fails, 2 gives the wrong length.
    struct Source;
    impl crate::context::Load for Source {
        fn load(&self, key: usize) -> Result<Bytes, String> {
            match key {
                0 => Ok(Bytes::from(vec![5u8; 20_000])),
                1 => Err("corrupt".into()),
                _ => Ok(Bytes::from_static(b"short")),
            }
        }
    }

    fn lazy_tree(key: usize) -> Tree {
        let source: std::sync::Arc<dyn crate::context::Load> = std::sync::Arc::new(Source);
        let file = |p: &str, data| Entry {
            path: p.into(),
            kind: Kind::File {
                data,
                executable: false,
            },
        };
        Tree::from_entries(
            0,
            vec![
                file("a", b"first"[..].into()),
                file("b", crate::context::Contents::lazy(20_000, source, key)),
                file("c", b"last"[..].into()),
            ],
        )
        .unwrap()
    }

    #[test]
    fn lazy_contents_are_loaded_when_the_stream_reaches_them() {
        let bytes = collect(TarBody::new(lazy_tree(0), TarOptions::default()));
        let mut ar = tar::Archive::new(&bytes[..]);
        let sizes: Vec<u64> = ar.entries().unwrap().map(|e| e.unwrap().size()).collect();
        assert_eq!(sizes, [5, 20_000, 4]);
    }

    #[test]
    fn a_failing_load_ends_the_stream_with_an_error_and_nothing_after_it() {
        for key in [1, 2] {
            for gzip_level in [None, Some(1)] {
                let chunks: Vec<_> =
                    TarBody::new(lazy_tree(key), TarOptions { gzip_level }).collect();
                let last = chunks.last().unwrap();
                let e = last.as_ref().unwrap_err().to_string();
                assert!(
                    e.contains(if key == 1 {
                        "corrupt"
                    } else {
                        "instead of 20000"
                    }),
                    "{e}"
                );
                assert!(chunks[..chunks.len() - 1].iter().all(|c| c.is_ok()));
                assert!(TarBody::new(lazy_tree(key), TarOptions::default())
                    .into_vec()
                    .is_err());
            }
        }
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let r = pax_records(&[("path", vec![b'a'; 5])]);
        assert_eq!(r, b"14 path=aaaaa\n");
        let r = pax_records(&[("path", vec![b'a'; 93])]);
        let s = String::from_utf8(r.clone()).unwrap();
        let len: usize = s.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(len, r.len());
    }
}
