//! What a file is, judged from everything it says of itself: the type the seller
//! declared, the type its first bytes show, and its name's extension. Each must
//! agree with the others, and a program or a script (by name or by its bytes) is
//! refused unless the marketplace sells software.

use crate::policy::{TypePolicy, TypeRejection, UNKNOWN_TYPE, family};

/// Everything a file says of its type, as the scan read it.
#[derive(Debug, Clone, Copy)]
pub struct FileEvidence<'a> {
    /// The seller's file name.
    pub file_name: &'a str,
    /// The type the seller declared.
    pub declared: &'a str,
    /// The type the first bytes show ([`UNKNOWN_TYPE`] when unrecognised).
    pub sniffed: &'a str,
    /// Whether the sniffer knows the declared type by its bytes (a `%PDF` file,
    /// a PNG): such a declaration over unrecognised bytes is false.
    pub declared_has_signature: bool,
}

/// What the judgement found a file to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    /// A program or a script, accepted because the marketplace sells software.
    pub software: bool,
}

/// Types whose bytes are programs or scripts: executables of every platform,
/// bytecode, installers and packages, and files a system runs (`#!`).
const SOFTWARE_TYPES: &[&str] = &[
    "application/vnd.microsoft.portable-executable",
    "application/x-executable",
    "application/x-mach-binary",
    "application/x-msdownload",
    "text/x-shellscript",
    "application/java",
    "application/java-archive",
    "application/wasm",
    "application/vnd.android.dex",
    "application/vnd.android.dey",
    "application/vnd.android.package-archive",
    "application/vnd.debian.binary-package",
    "application/x-rpm",
    "application/x-google-chrome-extension",
    "application/x-shockwave-flash",
    "application/x-msi",
];

/// Extensions of programs and scripts, which a buyer's system would run.
const SOFTWARE_EXTENSIONS: &[&str] = &[
    "exe",
    "com",
    "scr",
    "pif",
    "msi",
    "msix",
    "msp",
    "appx",
    "dll",
    "sys",
    "cpl",
    "ocx",
    "bat",
    "cmd",
    "ps1",
    "psm1",
    "psd1",
    "vbs",
    "vbe",
    "vb",
    "js",
    "jse",
    "mjs",
    "cjs",
    "wsf",
    "wsh",
    "wsc",
    "hta",
    "lnk",
    "reg",
    "scf",
    "gadget",
    "application",
    "jar",
    "class",
    "apk",
    "dex",
    "app",
    "pkg",
    "deb",
    "rpm",
    "appimage",
    "run",
    "sh",
    "bash",
    "zsh",
    "csh",
    "ksh",
    "fish",
    "command",
    "elf",
    "so",
    "dylib",
    "py",
    "pyw",
    "pyc",
    "pl",
    "rb",
    "php",
    "lua",
    "swf",
    "wasm",
    "xpi",
    "crx",
];

/// Extensions whose contents the sniffer recognises, with the types they may be.
/// An extension not listed (or a text format, which has no signature) says
/// nothing the bytes could contradict.
const EXTENSION_TYPES: &[(&[&str], &[&str])] = &[
    (&["pdf"], &["application/pdf"]),
    (&["zip"], &["application/zip"]),
    (&["epub"], &["application/epub+zip"]),
    (&["gz", "tgz"], &["application/gzip"]),
    (&["tar"], &["application/x-tar"]),
    (&["7z"], &["application/x-7z-compressed"]),
    (
        &["rar"],
        &["application/vnd.rar", "application/x-rar-compressed"],
    ),
    (&["png"], &["image/png"]),
    (&["jpg", "jpeg", "jpe"], &["image/jpeg"]),
    (&["gif"], &["image/gif"]),
    (&["webp"], &["image/webp"]),
    (&["bmp"], &["image/bmp"]),
    (&["tif", "tiff"], &["image/tiff"]),
    (&["psd"], &["image/vnd.adobe.photoshop"]),
    (
        &["mp4", "m4v", "mov", "qt"],
        &["video/mp4", "video/quicktime", "video/x-m4v"],
    ),
    (&["webm", "mkv"], &["video/webm", "video/x-matroska"]),
    (&["avi"], &["video/x-msvideo"]),
    (&["wmv"], &["video/x-ms-wmv"]),
    (&["flv"], &["video/x-flv"]),
    (&["mpg", "mpeg"], &["video/mpeg"]),
    (&["mp3"], &["audio/mpeg"]),
    (&["wav"], &["audio/x-wav"]),
    (&["flac"], &["audio/x-flac"]),
    (&["ogg", "oga", "opus"], &["audio/ogg", "audio/opus"]),
    (&["m4a"], &["audio/m4a", "audio/mp4", "video/mp4"]),
    (&["aif", "aiff"], &["audio/x-aiff"]),
    (
        &["ttf", "otf"],
        &["font/ttf", "font/otf", "application/font-sfnt"],
    ),
    (
        &["woff", "woff2"],
        &["font/woff", "font/woff2", "application/font-woff"],
    ),
];

/// The extension of `file_name` (after its last dot), lowercased; `None` without
/// one.
fn extension(file_name: &str) -> Option<String> {
    let (stem, ext) = file_name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// True for a type whose bytes are a program or a script.
pub fn is_software_type(content_type: &str) -> bool {
    SOFTWARE_TYPES.contains(&content_type)
}

/// Why a file of type `content_type` is software, when that type is a program's.
fn software_by_type(content_type: &str) -> Option<String> {
    is_software_type(content_type).then(|| format!("its contents are {content_type}"))
}

/// Why a file named `file_name` is software, when its extension is a program's.
fn software_by_name(file_name: &str) -> Option<String> {
    let ext = extension(file_name)?;
    SOFTWARE_EXTENSIONS
        .contains(&ext.as_str())
        .then(|| format!("it is named .{ext}"))
}

/// The extension of `file_name` when it names a format known by its bytes and
/// `content_type` is not that format.
fn name_disagrees(file_name: &str, content_type: &str) -> Option<String> {
    let ext = extension(file_name)?;
    let expected = expected_for(&ext)?;
    let agrees = expected.contains(&content_type)
        || family(content_type).is_some_and(|f| expected.iter().any(|t| family(t) == Some(f)));
    (!agrees).then_some(ext)
}

/// The types `ext` may be, when its contents are recognised by their bytes.
fn expected_for(ext: &str) -> Option<&'static [&'static str]> {
    EXTENSION_TYPES
        .iter()
        .find(|(exts, _)| exts.contains(&ext))
        .map(|(_, types)| *types)
}

impl TypePolicy {
    /// Judges a file by everything it says of its type, in this order (the most
    /// useful reason first):
    ///
    /// 1. a declared type the sniffer knows by its bytes must be found in them;
    /// 2. a program or a script, by its bytes or its name, is refused unless
    ///    `allow_software` (then it is marked as software);
    /// 3. the declared type and the bytes' type are allowed (programs' types too
    ///    where software is sold), and agree ([`TypePolicy::check`]);
    /// 4. an extension whose format has a signature must match the bytes: a
    ///    `.pdf` holds a PDF, a `.zip` a zip archive.
    pub fn judge(
        &self,
        evidence: &FileEvidence<'_>,
        allow_software: bool,
    ) -> Result<Judged, TypeRejection> {
        let FileEvidence {
            file_name,
            declared,
            sniffed,
            declared_has_signature,
        } = *evidence;
        if declared != UNKNOWN_TYPE && sniffed == UNKNOWN_TYPE && declared_has_signature {
            return Err(TypeRejection::Mismatch {
                declared: declared.to_owned(),
                sniffed: sniffed.to_owned(),
            });
        }
        let software = software_by_type(sniffed).or_else(|| software_by_name(file_name));
        if let (Some(why), false) = (&software, allow_software) {
            return Err(TypeRejection::Software { why: why.clone() });
        }
        self.check_selling(declared, sniffed, allow_software)?;
        if let Some(extension) = name_disagrees(file_name, sniffed) {
            return Err(TypeRejection::NameMismatch {
                extension,
                sniffed: sniffed.to_owned(),
            });
        }
        Ok(Judged {
            software: software.is_some(),
        })
    }

    /// Whether a file may be created at all, from what is known before its bytes
    /// arrive: its name and its declared type. A program or a script by either is
    /// refused unless `allow_software`; a declared type must be allowed (programs'
    /// types too where software is sold) and agree with a known extension.
    pub fn admit(
        &self,
        file_name: &str,
        declared: &str,
        allow_software: bool,
    ) -> Result<(), TypeRejection> {
        if !self.allows_selling(declared, allow_software) {
            return Err(TypeRejection::NotAllowed {
                content_type: declared.to_owned(),
            });
        }
        let software = software_by_type(declared).or_else(|| software_by_name(file_name));
        if let (Some(why), false) = (software, allow_software) {
            return Err(TypeRejection::Software { why });
        }
        match name_disagrees(file_name, declared) {
            Some(extension) if declared != UNKNOWN_TYPE => Err(TypeRejection::NameVsDeclared {
                extension,
                declared: declared.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FailureCode;

    fn policy() -> TypePolicy {
        TypePolicy::DEFAULT.parse().unwrap()
    }

    /// (name, declared, sniffed, declared has a signature, software allowed) →
    /// the code refused with, or `None` when accepted (and whether as software).
    #[test]
    fn a_file_is_what_its_declaration_its_bytes_and_its_name_all_say() {
        use FailureCode::{SoftwareNotAllowed as Software, TypeMismatch, TypeNotAllowed};
        const PE: &str = "application/vnd.microsoft.portable-executable";
        const ELF: &str = "application/x-executable";
        const MACH: &str = "application/x-mach-binary";
        const SH: &str = "text/x-shellscript";
        const OCTET: &str = UNKNOWN_TYPE;
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a str,
            bool,
            bool,
            Result<bool, FailureCode>,
        );
        let table: &[Case] = &[
            // Honest files.
            (
                "manual.pdf",
                "application/pdf",
                "application/pdf",
                true,
                false,
                Ok(false),
            ),
            (
                "pack.zip",
                OCTET,
                "application/zip",
                false,
                false,
                Ok(false),
            ),
            ("notes.txt", "text/plain", OCTET, false, false, Ok(false)),
            (
                "clip.MOV",
                "video/mp4",
                "video/quicktime",
                true,
                false,
                Ok(false),
            ),
            ("data", OCTET, OCTET, false, false, Ok(false)),
            (
                "font.ttf",
                "font/ttf",
                "application/font-sfnt",
                false,
                false,
                Ok(false),
            ),
            // A declared type known by its bytes must be in them.
            (
                "invoice.pdf.js",
                "application/pdf",
                OCTET,
                true,
                false,
                Err(TypeMismatch),
            ),
            (
                "invoice.pdf",
                "application/pdf",
                OCTET,
                true,
                false,
                Err(TypeMismatch),
            ),
            (
                "invoice.pdf.js",
                "application/pdf",
                OCTET,
                true,
                true,
                Err(TypeMismatch),
            ),
            // Programs and scripts, by name or by bytes.
            ("setup.bat", OCTET, OCTET, false, false, Err(Software)),
            ("run.ps1", OCTET, OCTET, false, false, Err(Software)),
            ("invoice.pdf.js", OCTET, OCTET, false, false, Err(Software)),
            ("tool.exe", OCTET, PE, false, false, Err(Software)),
            ("readme.txt", "text/plain", PE, false, false, Err(Software)),
            ("photo", OCTET, ELF, false, false, Err(Software)),
            ("app", OCTET, MACH, false, false, Err(Software)),
            ("install", OCTET, SH, false, false, Err(Software)),
            ("SETUP.EXE", OCTET, OCTET, false, false, Err(Software)),
            // Where the marketplace sells software, they are accepted and marked.
            ("setup.bat", OCTET, OCTET, false, true, Ok(true)),
            ("tool.exe", OCTET, PE, false, true, Ok(true)),
            ("install", OCTET, SH, false, true, Ok(true)),
            ("tool.exe", "video/mp4", PE, true, true, Err(TypeMismatch)),
            (
                "setup.exe",
                "application/x-msdownload",
                PE,
                false,
                true,
                Ok(true),
            ),
            // A program's name lets no type off the allow-list through.
            (
                "page.sh",
                OCTET,
                "text/html",
                false,
                true,
                Err(TypeNotAllowed),
            ),
            // A known extension must agree with the bytes.
            (
                "report.pdf",
                OCTET,
                "application/zip",
                false,
                false,
                Err(TypeMismatch),
            ),
            ("photo.jpg", OCTET, "image/png", false, false, Ok(false)),
            (
                "photo.jpg",
                OCTET,
                "application/pdf",
                false,
                false,
                Err(TypeMismatch),
            ),
            ("song.mp3", OCTET, OCTET, false, false, Err(TypeMismatch)),
            (
                "movie.mkv",
                "video/mp4",
                "video/mp4",
                true,
                false,
                Ok(false),
            ),
            (
                "archive.zip",
                OCTET,
                "application/pdf",
                false,
                false,
                Err(TypeMismatch),
            ),
            // The allow-list still holds for everything else.
            (
                "page.html",
                OCTET,
                "text/html",
                false,
                false,
                Err(TypeNotAllowed),
            ),
        ];
        for (name, declared, sniffed, signed, allow, expected) in table {
            let evidence = FileEvidence {
                file_name: name,
                declared,
                sniffed,
                declared_has_signature: *signed,
            };
            let got = policy().judge(&evidence, *allow);
            match (expected, &got) {
                (Ok(software), Ok(judged)) => {
                    assert_eq!(judged.software, *software, "{name} {declared} {sniffed}")
                }
                (Err(code), Err(refused)) => assert_eq!(
                    refused.code(),
                    *code,
                    "{name} {declared} {sniffed}: {refused}"
                ),
                _ => panic!("{name} {declared} {sniffed} (software {allow}): {got:?}"),
            }
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        let software = policy()
            .judge(
                &FileEvidence {
                    file_name: "setup.bat",
                    declared: UNKNOWN_TYPE,
                    sniffed: UNKNOWN_TYPE,
                    declared_has_signature: false,
                },
                false,
            )
            .unwrap_err()
            .to_string();
        assert!(
            software.contains(".bat") && software.contains("program"),
            "{software}"
        );
        let named = policy()
            .judge(
                &FileEvidence {
                    file_name: "report.pdf",
                    declared: UNKNOWN_TYPE,
                    sniffed: "application/zip",
                    declared_has_signature: false,
                },
                false,
            )
            .unwrap_err()
            .to_string();
        assert!(
            named.contains(".pdf") && named.contains("application/zip"),
            "{named}"
        );
    }

    #[test]
    fn a_file_is_admitted_by_its_name_and_declared_type_before_its_bytes_arrive() {
        use FailureCode::{SoftwareNotAllowed as Software, TypeMismatch, TypeNotAllowed};
        let p = policy();
        let code = |name: &str, declared: &str, allow: bool| {
            p.admit(name, declared, allow).map_err(|r| r.code())
        };
        assert_eq!(code("clip.mp4", "video/mp4", false), Ok(()));
        assert_eq!(code("clip.mov", "video/mp4", false), Ok(()));
        assert_eq!(code("manual.pdf", UNKNOWN_TYPE, false), Ok(()));
        assert_eq!(code("notes", "text/plain", false), Ok(()));
        assert_eq!(code("setup.bat", UNKNOWN_TYPE, false), Err(Software));
        assert_eq!(
            code("invoice.pdf.js", "application/pdf", false),
            Err(Software)
        );
        assert_eq!(
            code("photo.jpg", "application/pdf", false),
            Err(TypeMismatch)
        );
        assert_eq!(
            code(
                "tool",
                "application/vnd.microsoft.portable-executable",
                false
            ),
            Err(TypeNotAllowed)
        );
        assert_eq!(
            code(
                "tool.exe",
                "application/vnd.microsoft.portable-executable",
                true
            ),
            Ok(())
        );
        assert_eq!(code("setup.bat", UNKNOWN_TYPE, true), Ok(()));
        assert_eq!(code("page.html", "text/html", true), Err(TypeNotAllowed));
    }

    #[test]
    fn extensions_are_the_last_dot_s() {
        assert_eq!(extension("a.tar.GZ").as_deref(), Some("gz"));
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("noext"), None);
        assert_eq!(extension("trailing."), None);
    }
}
