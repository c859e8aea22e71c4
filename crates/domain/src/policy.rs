//! Which files the marketplace accepts: a configurable allow-list of content types,
//! checked against what the seller declared and what the file's bytes show.

use std::fmt;
use std::str::FromStr;

use crate::{ContentType, FailureCode};

/// What the bytes of a file say when the sniffer recognises nothing.
pub const UNKNOWN_TYPE: &str = "application/octet-stream";

/// The broad kind of a file, which decides its previews and media probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// `video/*`: thumbnail, short clip, probe.
    Video,
    /// `image/*`: resized thumbnails, probe.
    Image,
    /// `audio/*`: probe, no preview.
    Audio,
    /// Anything else: neither.
    Other,
}

impl MediaKind {
    /// The kind of a MIME type.
    pub fn of(content_type: &str) -> Self {
        match content_type.split('/').next().unwrap_or_default() {
            "video" => Self::Video,
            "image" => Self::Image,
            "audio" => Self::Audio,
            _ => Self::Other,
        }
    }
}

/// The ffmpeg demuxers that may read a file whose bytes sniffed as
/// `content_type` (ffmpeg's and ffprobe's `-format_whitelist`): a file that looks
/// like an MP4 is read as an MP4 and nothing else, so a crafted file cannot steer
/// the tools into another demuxer (a playlist, a concatenation). `None` for a type
/// no run is made for.
pub fn demuxers(content_type: &str) -> Option<&'static str> {
    Some(match content_type {
        "video/mp4" | "video/quicktime" | "video/x-m4v" | "video/3gpp" | "audio/mp4"
        | "audio/m4a" | "audio/x-m4a" => "mov,mp4,m4a,3gp,3g2,mj2",
        "video/webm" | "video/x-matroska" | "audio/webm" | "audio/x-matroska" => "matroska,webm",
        "video/x-msvideo" => "avi",
        "video/x-flv" => "flv",
        "video/mpeg" => "mpeg,mpegvideo",
        "video/mp2t" => "mpegts",
        "video/x-ms-wmv" | "video/x-ms-asf" => "asf",
        "video/ogg" | "audio/ogg" | "audio/opus" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/x-wav" | "audio/wav" => "wav",
        "audio/x-flac" | "audio/flac" => "flac",
        "audio/aac" => "aac",
        "audio/x-aiff" => "aiff",
        "image/jpeg" => "jpeg_pipe,image2",
        "image/png" => "png_pipe,image2",
        "image/gif" => "gif",
        "image/webp" => "webp_pipe,image2",
        "image/bmp" => "bmp_pipe,image2",
        "image/tiff" => "tiff_pipe,image2",
        _ => return None,
    })
}

/// One entry of the allow-list: `video/mp4`, or `video/*` for a whole family.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    top: String,
    sub: Option<String>,
}

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeRejection {
    /// The type is not on the allow-list.
    NotAllowed {
        /// The type found (or declared).
        content_type: String,
    },
    /// The bytes are not what the seller said.
    Mismatch {
        /// What the seller declared.
        declared: String,
        /// What the bytes are.
        sniffed: String,
    },
    /// The bytes are not what the file's name says.
    NameMismatch {
        /// The name's extension.
        extension: String,
        /// What the bytes are.
        sniffed: String,
    },
    /// The file's name says another type than the one declared.
    NameVsDeclared {
        /// The name's extension.
        extension: String,
        /// What the seller declared.
        declared: String,
    },
    /// A program or a script, where the marketplace sells no software.
    Software {
        /// What gave it away: its name, or its bytes.
        why: String,
    },
}

impl TypeRejection {
    /// The failure code the upload is rejected with.
    pub fn code(&self) -> FailureCode {
        match self {
            Self::NotAllowed { .. } => FailureCode::TypeNotAllowed,
            Self::Mismatch { .. } | Self::NameMismatch { .. } | Self::NameVsDeclared { .. } => {
                FailureCode::TypeMismatch
            }
            Self::Software { .. } => FailureCode::SoftwareNotAllowed,
        }
    }
}

impl fmt::Display for TypeRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAllowed { content_type } => write!(
                f,
                "files of type {content_type} are not accepted on the marketplace"
            ),
            Self::Mismatch { declared, sniffed } if sniffed == UNKNOWN_TYPE => write!(
                f,
                "the file was declared as {declared}, but its contents are not a {declared} file; \
                 upload the right file or declare its real type"
            ),
            Self::Mismatch { declared, sniffed } => write!(
                f,
                "the file was declared as {declared}, but its contents are {sniffed}; \
                 upload the right file or declare its real type"
            ),
            Self::NameMismatch { extension, sniffed } if sniffed == UNKNOWN_TYPE => write!(
                f,
                "the file is named .{extension}, but its contents are not a .{extension} file; \
                 upload the right file or name it for what it is"
            ),
            Self::NameMismatch { extension, sniffed } => write!(
                f,
                "the file is named .{extension}, but its contents are {sniffed}; \
                 upload the right file or name it for what it is"
            ),
            Self::NameVsDeclared {
                extension,
                declared,
            } => write!(
                f,
                "the file is named .{extension}, but was declared as {declared}; \
                 declare its real type or name it for what it is"
            ),
            Self::Software { why } => write!(
                f,
                "the file is a program or a script ({why}), and the marketplace does not sell \
                 software; upload the product itself"
            ),
        }
    }
}

/// The family a type belongs to where any member stands for another (a `.mov`
/// declared `video/mp4` is still a video; the sniffer names fonts
/// `application/font-sfnt` where sellers declare `font/ttf`).
pub(crate) fn family(content_type: &str) -> Option<&'static str> {
    if crate::file_type::is_software_type(content_type) {
        return Some("software");
    }
    match MediaKind::of(content_type) {
        MediaKind::Video => Some("video"),
        MediaKind::Image => Some("image"),
        MediaKind::Audio => Some("audio"),
        MediaKind::Other => (content_type.starts_with("font/")
            || content_type == "application/font-sfnt"
            || content_type == "application/font-woff")
            .then_some("font"),
    }
}

/// The allow-list of content types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypePolicy {
    allowed: Vec<Pattern>,
}

impl FromStr for TypePolicy {
    type Err = String;

    /// A comma-separated list such as `video/*,image/*,application/pdf`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut allowed = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let pattern = match entry.split_once('/') {
                Some((top, "*")) if !top.is_empty() && !top.contains('*') => Pattern {
                    top: top.to_ascii_lowercase(),
                    sub: None,
                },
                _ => {
                    let exact: ContentType = entry
                        .parse()
                        .map_err(|_| format!("{entry:?} is neither type/subtype nor type/*"))?;
                    let (top, sub) = exact.as_str().split_once('/').unwrap_or_default();
                    Pattern {
                        top: top.to_owned(),
                        sub: Some(sub.to_owned()),
                    }
                }
            };
            allowed.push(pattern);
        }
        if allowed.is_empty() {
            return Err("the allow-list is empty: no file could be accepted".into());
        }
        Ok(Self { allowed })
    }
}

impl TypePolicy {
    /// The default list: media, documents, archives and fonts; no executables.
    pub const DEFAULT: &'static str = "video/*,image/*,audio/*,font/*,application/font-sfnt,\
        application/font-woff,text/plain,application/pdf,\
        application/zip,application/epub+zip,application/gzip,application/x-tar,\
        application/x-7z-compressed,application/vnd.rar,application/x-rar-compressed,\
        application/octet-stream";

    /// Whether `content_type` is on the list.
    pub fn allows(&self, content_type: &str) -> bool {
        let (top, sub) = content_type.split_once('/').unwrap_or((content_type, ""));
        self.allowed
            .iter()
            .any(|p| p.top == top && p.sub.as_deref().is_none_or(|s| s == sub))
    }

    /// Checks a file whose seller declared `declared` and whose bytes sniff as
    /// `sniffed` ([`UNKNOWN_TYPE`] when unrecognised).
    ///
    /// - The declared type must be allowed.
    /// - Recognised bytes must be allowed and agree with the declaration: the same
    ///   type, the same media family (a `.mov` declared `video/mp4` is still a
    ///   video), or a declaration of [`UNKNOWN_TYPE`] (the seller did not know).
    /// - Unrecognised bytes cannot be audio, image or video: those formats are all
    ///   recognised by their first bytes, so such a declaration is wrong.
    pub fn check(&self, declared: &str, sniffed: &str) -> Result<(), TypeRejection> {
        self.check_selling(declared, sniffed, false)
    }

    /// Whether `content_type` may be uploaded: on the allow-list, or a program's
    /// type where the marketplace sells software.
    pub(crate) fn allows_selling(&self, content_type: &str, software: bool) -> bool {
        self.allows(content_type) || software && crate::file_type::is_software_type(content_type)
    }

    /// [`TypePolicy::check`], with programs' types allowed too where `software` is
    /// sold.
    pub(crate) fn check_selling(
        &self,
        declared: &str,
        sniffed: &str,
        software: bool,
    ) -> Result<(), TypeRejection> {
        if !self.allows_selling(declared, software) {
            return Err(TypeRejection::NotAllowed {
                content_type: declared.to_owned(),
            });
        }
        let mismatch = || TypeRejection::Mismatch {
            declared: declared.to_owned(),
            sniffed: sniffed.to_owned(),
        };
        if sniffed == UNKNOWN_TYPE {
            return match MediaKind::of(declared) {
                MediaKind::Other => Ok(()),
                _ => Err(mismatch()),
            };
        }
        if !self.allows_selling(sniffed, software) {
            return Err(TypeRejection::NotAllowed {
                content_type: sniffed.to_owned(),
            });
        }
        let same_family = family(declared).is_some() && family(declared) == family(sniffed);
        if declared == sniffed || declared == UNKNOWN_TYPE || same_family {
            Ok(())
        } else {
            Err(mismatch())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> TypePolicy {
        TypePolicy::DEFAULT.parse().unwrap()
    }

    #[test]
    fn a_zip_declared_as_video_is_a_mismatch() {
        let err = policy().check("video/mp4", "application/zip").unwrap_err();
        assert_eq!(err.code(), FailureCode::TypeMismatch);
        assert!(err.to_string().contains("application/zip"), "{err}");
    }

    #[test]
    fn unrecognised_bytes_cannot_claim_to_be_media() {
        assert_eq!(
            policy()
                .check("video/mp4", UNKNOWN_TYPE)
                .unwrap_err()
                .code(),
            FailureCode::TypeMismatch
        );
        assert_eq!(policy().check("text/plain", UNKNOWN_TYPE), Ok(()));
    }

    #[test]
    fn same_family_and_generic_declarations_pass() {
        assert_eq!(policy().check("video/mp4", "video/quicktime"), Ok(()));
        assert_eq!(policy().check(UNKNOWN_TYPE, "application/pdf"), Ok(()));
        assert_eq!(policy().check("image/png", "image/png"), Ok(()));
        assert!(
            policy()
                .check("application/pdf", "application/zip")
                .is_err()
        );
    }

    #[test]
    fn types_off_the_list_are_refused_whoever_names_them() {
        let err = policy()
            .check(UNKNOWN_TYPE, "application/x-executable")
            .unwrap_err();
        assert_eq!(err.code(), FailureCode::TypeNotAllowed);
        let narrow: TypePolicy = "video/*".parse().unwrap();
        assert_eq!(
            narrow
                .check("application/zip", "application/zip")
                .unwrap_err()
                .code(),
            FailureCode::TypeNotAllowed
        );
    }

    #[test]
    fn patterns_parse_and_match() {
        let p: TypePolicy = "video/*, application/PDF".parse().unwrap();
        assert!(p.allows("video/webm") && p.allows("application/pdf"));
        assert!(!p.allows("image/png") && !p.allows("application/pdfx"));
        assert!("".parse::<TypePolicy>().is_err());
        assert!("*/*".parse::<TypePolicy>().is_err());
        assert!("video".parse::<TypePolicy>().is_err());
    }

    #[test]
    fn each_media_type_is_read_by_its_own_demuxers_and_others_by_none() {
        assert_eq!(demuxers("video/mp4"), Some("mov,mp4,m4a,3gp,3g2,mj2"));
        assert_eq!(demuxers("image/png"), Some("png_pipe,image2"));
        assert_eq!(demuxers("audio/mpeg"), Some("mp3"));
        for none in [
            "application/zip",
            "application/pdf",
            UNKNOWN_TYPE,
            "audio/midi",
            "image/vnd.adobe.photoshop",
            "video/unheard-of",
        ] {
            assert_eq!(demuxers(none), None, "{none}");
        }
        // No entry lets in the demuxers that open other inputs.
        for listed in [
            "video/mp4",
            "video/webm",
            "image/jpeg",
            "audio/ogg",
            "video/mpeg",
        ] {
            let names = demuxers(listed).unwrap();
            for risky in [
                "concat",
                "hls",
                "applehttp",
                "dash",
                "ffconcat",
                "tee",
                "data",
            ] {
                assert!(
                    !names.split(',').any(|n| n == risky),
                    "{listed} allows {risky}"
                );
            }
        }
    }

    #[test]
    fn media_kinds_come_from_the_top_level_type() {
        assert_eq!(MediaKind::of("video/mp4"), MediaKind::Video);
        assert_eq!(MediaKind::of("image/jpeg"), MediaKind::Image);
        assert_eq!(MediaKind::of("audio/mpeg"), MediaKind::Audio);
        assert_eq!(MediaKind::of("application/zip"), MediaKind::Other);
    }
}
