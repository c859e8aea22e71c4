//! Files built to defeat a scanner, made in the test: decompression bombs (a ZIP64
//! entry of 4 GiB, and two ordinary entries of 2.25 GiB each), archives nested
//! deeper than the scanner follows, a password-protected zip and an encrypted PDF.
//! Bombs are a few MB: one block of compressed zeros, flushed so that it can be
//! repeated, stands for 64 MiB.

use std::io::Write;

/// How much one repeated compressed block expands to.
const BLOCK: u64 = 64 * 1024 * 1024;

/// A raw deflate stream of `blocks` × 64 MiB of the byte `fill`, its CRC-32 and
/// size.
fn deflated(fill: u8, blocks: u64) -> (Vec<u8>, u32, u64) {
    let zeros = vec![fill; BLOCK as usize];
    let mut block = Vec::with_capacity(128 * 1024);
    let mut deflate = flate2::Compress::new(flate2::Compression::best(), false);
    deflate
        .compress_vec(&zeros, &mut block, flate2::FlushCompress::Full)
        .expect("deflate");
    assert_eq!(deflate.total_in(), BLOCK, "the block took all its input");
    let mut end = Vec::with_capacity(16);
    flate2::Compress::new(flate2::Compression::best(), false)
        .compress_vec(&[], &mut end, flate2::FlushCompress::Finish)
        .expect("deflate end");
    let mut data = Vec::with_capacity(block.len() * blocks as usize + end.len());
    for _ in 0..blocks {
        data.extend_from_slice(&block);
    }
    data.extend_from_slice(&end);
    let mut one = crc32fast::Hasher::new();
    one.update(&zeros);
    let mut crc = crc32fast::Hasher::new();
    for _ in 0..blocks {
        crc.combine(&one);
    }
    (data, crc.finalize(), blocks * BLOCK)
}

/// One entry of a hand-made zip: name, deflated data, CRC and expanded size.
struct Entry {
    name: &'static [u8],
    data: Vec<u8>,
    crc: u32,
    size: u64,
}

/// Writes `entries` as a zip; with `zip64`, every size is in a ZIP64 extra field
/// (the 32-bit fields hold 0xFFFFFFFF), as writers do for entries over 4 GiB.
fn zip_of(entries: &[Entry], zip64: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u64;
        let (csize, usize) = if zip64 {
            (u32::MAX, u32::MAX)
        } else {
            (
                u32::try_from(e.data.len()).expect("fits"),
                u32::try_from(e.size).expect("fits"),
            )
        };
        let version: u16 = if zip64 { 45 } else { 20 };
        let local_extra = if zip64 {
            let mut x = vec![];
            x.extend_from_slice(&1u16.to_le_bytes());
            x.extend_from_slice(&16u16.to_le_bytes());
            x.extend_from_slice(&e.size.to_le_bytes());
            x.extend_from_slice(&(e.data.len() as u64).to_le_bytes());
            x
        } else {
            vec![]
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&8u16.to_le_bytes()); // deflate
        out.extend_from_slice(&0u32.to_le_bytes()); // time, date
        out.extend_from_slice(&e.crc.to_le_bytes());
        out.extend_from_slice(&csize.to_le_bytes());
        out.extend_from_slice(&usize.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(local_extra.len() as u16).to_le_bytes());
        out.extend_from_slice(e.name);
        out.extend_from_slice(&local_extra);
        out.extend_from_slice(&e.data);

        let central_extra = if zip64 {
            let mut x = vec![];
            x.extend_from_slice(&1u16.to_le_bytes());
            x.extend_from_slice(&24u16.to_le_bytes());
            x.extend_from_slice(&e.size.to_le_bytes());
            x.extend_from_slice(&(e.data.len() as u64).to_le_bytes());
            x.extend_from_slice(&offset.to_le_bytes());
            x
        } else {
            vec![]
        };
        let local_offset = if zip64 {
            u32::MAX
        } else {
            u32::try_from(offset).expect("fits")
        };
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&version.to_le_bytes());
        central.extend_from_slice(&version.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&8u16.to_le_bytes());
        central.extend_from_slice(&0u32.to_le_bytes());
        central.extend_from_slice(&e.crc.to_le_bytes());
        central.extend_from_slice(&csize.to_le_bytes());
        central.extend_from_slice(&usize.to_le_bytes());
        central.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        central.extend_from_slice(&(central_extra.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 8]); // comment length, disk, attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&local_offset.to_le_bytes());
        central.extend_from_slice(e.name);
        central.extend_from_slice(&central_extra);
    }
    let central_offset = out.len() as u64;
    out.extend_from_slice(&central);
    let count = entries.len() as u16;
    if zip64 {
        let record = out.len() as u64;
        out.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        out.extend_from_slice(&44u64.to_le_bytes());
        out.extend_from_slice(&45u16.to_le_bytes());
        out.extend_from_slice(&45u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&u64::from(count).to_le_bytes());
        out.extend_from_slice(&u64::from(count).to_le_bytes());
        out.extend_from_slice(&(central.len() as u64).to_le_bytes());
        out.extend_from_slice(&central_offset.to_le_bytes());
        out.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&record.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
    }
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    let offset32 = if zip64 {
        u32::MAX
    } else {
        central_offset as u32
    };
    out.extend_from_slice(&offset32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A zip holding `data` as `name`, deflated; with `zip64`, its sizes are in ZIP64
/// fields as streaming writers make them.
pub fn deflated_zip(name: &'static str, data: &[u8], zip64: bool) -> Vec<u8> {
    let mut deflated = Vec::with_capacity(data.len() + 64);
    flate2::Compress::new(flate2::Compression::best(), false)
        .compress_vec(data, &mut deflated, flate2::FlushCompress::Finish)
        .expect("deflate");
    zip_of(
        &[Entry {
            name: name.as_bytes(),
            data: deflated,
            crc: crc32fast::hash(data),
            size: data.len() as u64,
        }],
        zip64,
    )
}

/// A zip of one 4 GiB file of zeros, ZIP64 as any writer makes it (about 4 MB).
pub fn zip64_bomb() -> Vec<u8> {
    let (data, crc, size) = deflated(0, 64);
    zip_of(
        &[Entry {
            name: b"zeros.bin",
            data,
            crc,
            size,
        }],
        true,
    )
}

/// A zip of two 2.25 GiB files (4.5 GiB expanded), each small enough for
/// ordinary 32-bit fields (about 5 MB). Their contents differ (zeros, then 0xFF),
/// or a scanner that remembers clean contents would read only the first.
pub fn classic_bomb() -> Vec<u8> {
    let entry = |name, fill| {
        let (data, crc, size) = deflated(fill, 36);
        Entry {
            name,
            data,
            crc,
            size,
        }
    };
    zip_of(
        &[entry(b"part-1.bin", 0), entry(b"part-2.bin", 0xff)],
        false,
    )
}

/// `copies` of `zip` (each deflated) in one zip, each named from `names`.
fn zip_of_copies(zip: &[u8], names: &[&'static [u8]]) -> Vec<u8> {
    let mut deflated = Vec::with_capacity(zip.len() / 4 + 64);
    flate2::Compress::new(flate2::Compression::best(), false)
        .compress_vec(zip, &mut deflated, flate2::FlushCompress::Finish)
        .expect("deflate");
    let entries: Vec<Entry> = names
        .iter()
        .map(|name| Entry {
            name,
            data: deflated.clone(),
            crc: crc32fast::hash(zip),
            size: zip.len() as u64,
        })
        .collect();
    zip_of(&entries, false)
}

/// Sixteen names of nested zips.
const SIXTEEN: [&[u8]; 16] = [
    b"pack-01.zip",
    b"pack-02.zip",
    b"pack-03.zip",
    b"pack-04.zip",
    b"pack-05.zip",
    b"pack-06.zip",
    b"pack-07.zip",
    b"pack-08.zip",
    b"pack-09.zip",
    b"pack-10.zip",
    b"pack-11.zip",
    b"pack-12.zip",
    b"pack-13.zip",
    b"pack-14.zip",
    b"pack-15.zip",
    b"pack-16.zip",
];

/// The 42.zip kind of bomb, written without ZIP64: 16 zips of 16 zips of one
/// 1 GiB leaf of zeros (the same leaf each time), about 38 kB for 256 GiB. A
/// scanner that remembers clean contents reads one leaf and passes the rest.
pub fn copies_bomb() -> Vec<u8> {
    let (data, crc, size) = deflated(0, 16);
    let leaf = zip_of(
        &[Entry {
            name: b"zeros.bin",
            data,
            crc,
            size,
        }],
        false,
    );
    let middle = zip_of_copies(&leaf, &SIXTEEN);
    zip_of_copies(&middle, &SIXTEEN)
}

/// The ordinary kind of nested archive: 4 zips of 4 zips of one 1 MiB leaf (16 MiB
/// unpacked), the same leaf each time.
pub fn nested_copies() -> Vec<u8> {
    let leaf = deflated_zip("texture.raw", &vec![0x5a; 1024 * 1024], false);
    let middle = zip_of_copies(&leaf, &SIXTEEN[..4]);
    zip_of_copies(&middle, &SIXTEEN[..4])
}

/// A zip holding `data` as `name`, stored, optionally with a password (ZipCrypto).
pub fn zip_with(name: &str, data: &[u8], password: Option<&[u8]>) -> Vec<u8> {
    use zip::unstable::write::FileOptionsExt;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    if let Some(password) = password {
        options = options
            .with_deprecated_encryption(password)
            .expect("ZipCrypto options");
    }
    zip.start_file(name, options).expect("start file");
    zip.write_all(data).expect("write");
    zip.finish().expect("finish").into_inner()
}

/// `data` inside `depth` zips, each inside the next.
pub fn nested_zips(depth: usize, data: &[u8]) -> Vec<u8> {
    let mut inner = zip_with("innermost.txt", data, None);
    for level in 1..depth {
        inner = zip_with(&format!("level-{level}.zip"), &inner, None);
    }
    inner
}

/// A one-page PDF encrypted with a user password (RC4, 128-bit): readable only
/// with the password, so a scanner cannot look inside.
pub fn encrypted_pdf() -> Vec<u8> {
    use rand::RngCore;
    let mut rng = rand::rng();
    let mut hex = |n: usize| {
        let mut bytes = vec![0u8; n];
        rng.fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    let (owner, user, id, content) = (hex(32), hex(32), hex(16), hex(64));
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>".to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        format!("<< /Filter /Standard /V 2 /R 3 /Length 128 /O <{owner}> /U <{user}> /P -1028 >>"),
    ];
    let mut out = b"%PDF-1.6\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Encrypt 5 0 R /ID [<{id}><{id}>] >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}
