//! A zip's unpacked size, added up across nesting, from the same one read the
//! scan makes. clamd remembers files it found clean and skips their copies, so a
//! bomb of identical nested zips (16 of 16 of one 1 GiB leaf: 256 GiB from 38 kB)
//! never reaches its limits and passes. This walk reads the local headers of the
//! zip and of every zip inside it (inflating only the archives, never a leaf),
//! adds up the sizes the leaves declare, however often the same leaf repeats, and
//! stops at the first limit crossed: too large once unpacked, nested too deep, or
//! too many files. Memory is a few buffers per level; time is bounded by the
//! limits.

use std::io::{self, BufRead, Read};

use bytes::Bytes;
use tokio::sync::mpsc;
use upload_domain::Uninspected;

/// The limits, the scanner's own (deploy/clamav/scan-limits.conf): `MaxScanSize`,
/// `MaxRecursion` and `MaxFiles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkLimits {
    /// The most bytes the leaves may declare in all.
    pub unpacked: u64,
    /// The deepest nesting of zips in zips.
    pub depth: u32,
    /// The most entries, at every level together.
    pub entries: u64,
}

impl WalkLimits {
    /// clamd's limits as the project configures them.
    pub const SCANNER: Self = Self {
        unpacked: 4000 * 1024 * 1024,
        depth: 17,
        entries: 20_000,
    };
}

const LOCAL: u32 = 0x0403_4b50;
const STORED: u16 = 0;
const DEFLATED: u16 = 8;

/// What the walk is counting.
struct Count {
    limits: WalkLimits,
    unpacked: u64,
    entries: u64,
}

/// Why the walk stopped early: a limit crossed.
type Crossed = Uninspected;

impl Count {
    /// Adds `bytes` unpacked; the limit crossed, if that crossed it.
    fn unpacked_more(&mut self, bytes: u64) -> Option<Crossed> {
        self.unpacked = self.unpacked.saturating_add(bytes);
        (self.unpacked > self.limits.unpacked).then_some(Uninspected::TooLarge)
    }
}

fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Fills `buf` unless the reader ends first; false at a clean end before any byte.
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<bool> {
    let got = read_up_to(r, buf)?;
    match got {
        0 => Ok(false),
        n if n == buf.len() => Ok(true),
        _ => Err(io::ErrorKind::UnexpectedEof.into()),
    }
}

/// Reads into `buf` until it is full or the reader ends; how much it read.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The ZIP64 sizes (uncompressed, compressed) an extra field holds for the ones
/// the header left at 0xFFFFFFFF.
fn zip64_sizes(extra: &[u8], size: u64, compressed: u64) -> (u64, u64) {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let (id, len) = (read_u16(extra, at), usize::from(read_u16(extra, at + 2)));
        let body = &extra[at + 4..(at + 4 + len).min(extra.len())];
        if id == 0x0001 {
            let mut fields = body
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
            let size = if size == 0xFFFF_FFFF {
                fields.next().unwrap_or(size)
            } else {
                size
            };
            let compressed = if compressed == 0xFFFF_FFFF {
                fields.next().unwrap_or(compressed)
            } else {
                compressed
            };
            return (size, compressed);
        }
        at += 4 + len;
    }
    (size, compressed)
}

/// Walks the entry data `inner` (stored or inflated) as a zip if it begins as
/// one: `Some` with what the walk found, `None` for a leaf.
fn walk_if_zip(
    inner: &mut dyn Read,
    depth: u32,
    count: &mut Count,
) -> io::Result<Option<Option<Crossed>>> {
    let mut head = [0u8; 4];
    let got = read_up_to(inner, &mut head)?;
    if got < 4 || read_u32(&head, 0) != LOCAL {
        return Ok(None);
    }
    let mut whole = io::BufReader::new(io::Cursor::new(head).chain(inner));
    walk_zip(&mut whole, depth + 1, count).map(Some)
}

/// Walks the zip `r` at `depth`, counting into `count`. `Ok(None)` when it ended
/// (or is not a zip) within the limits. Entries are told apart from their data by
/// their bytes, not their names: a zip is walked whatever it is called.
///
/// Nothing the walk meets ends it early, since clamd reads a zip by its central
/// directory and would find entries a walk that gave up left uncounted: an entry
/// damaged inside counts as a leaf of the size it declares, and wherever a header
/// is expected and not found (the central directory, a data descriptor, an entry
/// whose end its header does not tell, bytes slipped between entries) the walk
/// reads on to the next entry's header, counting the bytes it passed as unpacked.
fn walk_zip(r: &mut dyn BufRead, depth: u32, count: &mut Count) -> io::Result<Option<Crossed>> {
    if depth > count.limits.depth {
        return Ok(Some(Uninspected::TooDeep));
    }
    let mut first = true;
    loop {
        let mut header = [0u8; 30];
        if !fill(r, &mut header[..4])? {
            return Ok(None);
        }
        if read_u32(&header, 0) != LOCAL {
            if first {
                return Ok(None);
            }
            let Some(passed) = read_to_header(r, &header[1..4])? else {
                return Ok(None);
            };
            if let Some(crossed) = count.unpacked_more(passed) {
                return Ok(Some(crossed));
            }
            header[..4].copy_from_slice(&LOCAL.to_le_bytes());
        }
        first = false;
        fill(r, &mut header[4..])?;
        let flags = read_u16(&header, 6);
        let method = read_u16(&header, 8);
        let (name_len, extra_len) = (
            usize::from(read_u16(&header, 26)),
            usize::from(read_u16(&header, 28)),
        );
        let mut name_extra = vec![0u8; name_len + extra_len];
        fill(r, &mut name_extra)?;
        let (size, compressed) = zip64_sizes(
            &name_extra[name_len..],
            u64::from(read_u32(&header, 22)),
            u64::from(read_u32(&header, 18)),
        );
        count.entries += 1;
        if count.entries > count.limits.entries {
            return Ok(Some(Uninspected::TooManyFiles));
        }
        let encrypted = flags & 1 != 0;
        let readable = !encrypted && (method == STORED || method == DEFLATED);
        if flags & 8 != 0 {
            // Sizes come after the data: only a deflated stream says where it ends.
            // Past any other entry (and past the descriptor), the next header is
            // found by reading on.
            if readable && method == DEFLATED {
                let mut inflated = flate2::bufread::DeflateDecoder::new(&mut *r);
                if let Ok(Some(crossed)) = walk_streamed(&mut inflated, depth, count) {
                    return Ok(Some(crossed));
                }
            }
            continue;
        }
        let mut data = (&mut *r).take(compressed);
        let nested = if !readable {
            Ok(None)
        } else if method == STORED {
            walk_if_zip(&mut data, depth, count)
        } else {
            walk_if_zip(
                &mut flate2::bufread::DeflateDecoder::new(&mut data),
                depth,
                count,
            )
        };
        match nested {
            Ok(Some(Some(crossed))) => return Ok(Some(crossed)),
            Ok(Some(None)) => {}
            // A leaf, or an entry damaged inside: counted by what it declares.
            Ok(None) | Err(_) => {
                if let Some(crossed) = count.unpacked_more(size.max(compressed)) {
                    return Ok(Some(crossed));
                }
            }
        }
        io::copy(&mut data, &mut io::sink())?;
    }
}

/// Walks a deflated entry of unknown size to its stream's end: as a zip if it is
/// one, else as a leaf counted by its inflated bytes.
fn walk_streamed(
    inflated: &mut dyn Read,
    depth: u32,
    count: &mut Count,
) -> io::Result<Option<Crossed>> {
    match walk_if_zip(inflated, depth, count)? {
        Some(Some(crossed)) => return Ok(Some(crossed)),
        Some(None) => {}
        None => {
            if let Some(crossed) = count_leaf(inflated, count)? {
                return Ok(Some(crossed));
            }
        }
    }
    io::copy(inflated, &mut io::sink())?;
    Ok(None)
}

/// Reads up to and through the next local header's signature, the bytes just read
/// (`before`, up to 3) taken as its possible start: how many bytes it passed, or
/// `None` at the end. Bytes that merely look like a header are walked as one,
/// which can only count more.
fn read_to_header(r: &mut dyn BufRead, before: &[u8]) -> io::Result<Option<u64>> {
    const SIGNATURE: [u8; 4] = LOCAL.to_le_bytes();
    let mut tail = before.to_vec();
    let mut passed = 0u64;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        // The signature may begin in the bytes before this buffer.
        let mut joined = tail.clone();
        joined.extend_from_slice(&buf[..buf.len().min(3)]);
        let found = joined
            .windows(4)
            .position(|w| w == SIGNATURE)
            .map(|at| at + 4 - tail.len())
            .or_else(|| buf.windows(4).position(|w| w == SIGNATURE).map(|at| at + 4));
        if let Some(through) = found {
            r.consume(through);
            return Ok(Some(passed + through as u64));
        }
        let n = buf.len();
        tail.extend_from_slice(&buf[n.saturating_sub(3)..]);
        tail.drain(..tail.len().saturating_sub(3));
        r.consume(n);
        passed += n as u64;
    }
}

/// Counts a leaf whose size only its inflated bytes tell.
fn count_leaf(r: &mut dyn Read, count: &mut Count) -> io::Result<Option<Crossed>> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(crossed) = count.unpacked_more(n as u64) {
            return Ok(Some(crossed));
        }
    }
}

/// Blocks from a channel as a reader.
struct Blocks {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for Blocks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(block) => self.current = block,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Walks the file whose blocks arrive on `rx`, on a thread of its own, and reads
/// every block to the end whatever it found (the scan's one read never waits on
/// it). The limit the file crossed, if it crossed one; a file that is not a zip, or
/// a damaged one, crosses none (clamd judges those).
pub fn spawn(
    rx: mpsc::Receiver<Bytes>,
    limits: WalkLimits,
) -> tokio::task::JoinHandle<Option<Uninspected>> {
    tokio::task::spawn_blocking(move || {
        let mut blocks = Blocks {
            rx,
            current: Bytes::new(),
        };
        let mut count = Count {
            limits,
            unpacked: 0,
            entries: 0,
        };
        let mut reader = io::BufReader::with_capacity(64 * 1024, &mut blocks);
        let crossed = walk_zip(&mut reader, 0, &mut count).unwrap_or(None);
        drop(reader);
        // The rest is read and dropped, so the scan's read goes on.
        while blocks.rx.blocking_recv().is_some() {}
        crossed
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, Vec<u8>)], method: zip::CompressionMethod) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, bytes) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn walked(bytes: &[u8], limits: WalkLimits) -> Option<Uninspected> {
        let mut count = Count {
            limits,
            unpacked: 0,
            entries: 0,
        };
        walk_zip(&mut io::Cursor::new(bytes), 0, &mut count).unwrap()
    }

    const SMALL: WalkLimits = WalkLimits {
        unpacked: 1000,
        depth: 3,
        entries: 20,
    };

    #[test]
    fn copies_of_one_leaf_add_up_across_nesting() {
        let deflate = zip::CompressionMethod::Deflated;
        let leaf = zip_of(&[("zeros.bin", vec![0; 300])], deflate);
        let middle = zip_of(&[("a.zip", leaf.clone()), ("b.zip", leaf.clone())], deflate);
        // 2 × 300 declared: within 1000.
        assert_eq!(walked(&middle, SMALL), None);
        // 2 × 2 × 300 = 1200 declared: too large, though each leaf is the same.
        let outer = zip_of(&[("m1.zip", middle.clone()), ("m2.zip", middle)], deflate);
        assert_eq!(walked(&outer, SMALL), Some(Uninspected::TooLarge));
        // A zip is a zip whatever its name says.
        let disguised = zip_of(
            &[(
                "m1.dat",
                zip_of(
                    &[
                        ("a.png", leaf.clone()),
                        ("b.png", leaf.clone()),
                        ("c.png", leaf.clone()),
                        ("d.png", leaf.clone()),
                    ],
                    deflate,
                ),
            )],
            deflate,
        );
        assert_eq!(walked(&disguised, SMALL), Some(Uninspected::TooLarge));
        // Stored entries are walked the same way.
        let stored = zip_of(&[("m1.zip", outer.clone())], zip::CompressionMethod::Stored);
        assert_eq!(walked(&stored, SMALL), Some(Uninspected::TooLarge));
    }

    #[test]
    fn nesting_and_entries_have_their_limits_and_other_files_cross_none() {
        let deflate = zip::CompressionMethod::Deflated;
        let mut nested = zip_of(&[("core.txt", b"x".to_vec())], deflate);
        for level in 0..4 {
            nested = zip_of(&[(&format!("level{level}.zip"), nested)], deflate);
        }
        assert_eq!(walked(&nested, SMALL), Some(Uninspected::TooDeep));
        let many: Vec<(String, Vec<u8>)> = (0..21).map(|i| (format!("f{i}"), vec![1])).collect();
        let many: Vec<(&str, Vec<u8>)> =
            many.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        assert_eq!(
            walked(&zip_of(&many, deflate), SMALL),
            Some(Uninspected::TooManyFiles)
        );
        // Not a zip, and a zip cut short: nothing crossed (clamd judges them).
        assert_eq!(walked(b"%PDF-1.7 plain", SMALL), None);
        let honest = zip_of(&[("a.txt", vec![7; 100]), ("b.txt", vec![8; 100])], deflate);
        assert_eq!(walked(&honest, SMALL), None);
        assert_eq!(walked(&honest[..40], SMALL), None);
    }

    fn streamed_zip_of(entries: &[(&str, Vec<u8>)], method: zip::CompressionMethod) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new_stream(Vec::new());
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, bytes) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// Where entry `n` (from 0) starts: its local header's offset.
    fn entry_at(zip: &[u8], n: usize) -> usize {
        zip.windows(4)
            .enumerate()
            .filter(|(_, w)| *w == LOCAL.to_le_bytes())
            .nth(n)
            .map(|(at, _)| at)
            .unwrap()
    }

    #[test]
    fn nothing_before_the_bomb_ends_the_walk_early() {
        let deflate = zip::CompressionMethod::Deflated;
        let leaf = zip_of(&[("zeros.bin", vec![0; 300])], deflate);
        let copies = [
            ("a.zip", leaf.clone()),
            ("b.zip", leaf.clone()),
            ("c.zip", leaf.clone()),
            ("d.zip", leaf),
        ];
        // Entries whose sizes follow their data, stored or deflated.
        for method in [zip::CompressionMethod::Stored, deflate] {
            let streamed = streamed_zip_of(&copies, method);
            assert_ne!(
                read_u16(&streamed, 6) & 8,
                0,
                "{method:?}: a data descriptor"
            );
            assert_eq!(
                walked(&streamed, SMALL),
                Some(Uninspected::TooLarge),
                "{method:?}"
            );
        }
        // Bytes slipped in before the second entry, a false central directory
        // among them, and a signature split by the slip.
        let bomb = zip_of(
            &[
                ("readme.txt", b"hello".to_vec()),
                ("m.zip", zip_of(&copies, deflate)),
            ],
            deflate,
        );
        let second = entry_at(&bomb, 1);
        for slipped in [
            &b"junk"[..],
            b"PK\x01\x02 not the central directory",
            b"xyzPK",
        ] {
            let mut tampered = bomb[..second].to_vec();
            tampered.extend_from_slice(slipped);
            tampered.extend_from_slice(&bomb[second..]);
            assert_eq!(
                walked(&tampered, SMALL),
                Some(Uninspected::TooLarge),
                "{slipped:?}"
            );
        }
        // A first entry that begins like a zip and is not one.
        let damaged = zip_of(
            &[
                ("fake.zip", b"PK\x03\x04 and nothing after".to_vec()),
                ("m.zip", zip_of(&copies, deflate)),
            ],
            zip::CompressionMethod::Stored,
        );
        assert_eq!(walked(&damaged, SMALL), Some(Uninspected::TooLarge));
    }

    #[test]
    fn the_walk_s_limits_are_the_ones_clamd_is_configured_with() {
        let conf = include_str!("../../deploy/clamav/scan-limits.conf");
        let setting = |name: &str| {
            conf.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{name} in scan-limits.conf"))
                .trim()
                .to_owned()
        };
        let mib: u64 = setting("MaxScanSize")
            .trim_end_matches('M')
            .parse()
            .unwrap();
        assert_eq!(WalkLimits::SCANNER.unpacked, mib * 1024 * 1024);
        assert_eq!(
            WalkLimits::SCANNER.depth.to_string(),
            setting("MaxRecursion")
        );
        assert_eq!(WalkLimits::SCANNER.entries.to_string(), setting("MaxFiles"));
    }

    #[tokio::test]
    async fn the_walk_reads_every_block_whatever_it_finds() {
        let (tx, rx) = mpsc::channel(2);
        let walk = spawn(rx, SMALL);
        let bomb = {
            let leaf = zip_of(&[("z", vec![0; 600])], zip::CompressionMethod::Deflated);
            zip_of(
                &[("a.zip", leaf.clone()), ("b.zip", leaf)],
                zip::CompressionMethod::Deflated,
            )
        };
        let mut blocks: Vec<Bytes> = bomb.chunks(7).map(Bytes::copy_from_slice).collect();
        blocks.extend((0..50).map(|_| Bytes::from_static(b"trailing bytes after the limit")));
        for block in blocks {
            tx.send(block).await.expect("the walk keeps reading");
        }
        drop(tx);
        assert_eq!(walk.await.unwrap(), Some(Uninspected::TooLarge));
    }
}
