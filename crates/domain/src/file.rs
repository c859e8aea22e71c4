use std::fmt;
use std::str::FromStr;

use crate::DomainError;
use crate::text::is_invisible_format;

/// The seller's name for a file. Kept for downloads and display; never used to
/// build a storage key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for FileName {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(DomainError::InvalidFileName("it is empty"));
        }
        if s.len() > 255 {
            return Err(DomainError::InvalidFileName("it is longer than 255 bytes"));
        }
        if s.chars().any(|c| c.is_control()) {
            return Err(DomainError::InvalidFileName(
                "it contains control characters",
            ));
        }
        if s.chars().any(is_invisible_format) {
            return Err(DomainError::InvalidFileName(
                "it contains invisible formatting characters (such as right-to-left overrides) that can disguise a name",
            ));
        }
        if s.contains('/') || s.contains('\\') {
            return Err(DomainError::InvalidFileName("it contains a path separator"));
        }
        if s.chars().all(|c| c == '.' || c.is_whitespace()) {
            return Err(DomainError::InvalidFileName(
                "it is made only of dots and spaces",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A MIME type of the form `type/subtype`, lower-cased, without parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentType(String);

impl ContentType {
    /// The type as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the slash: `video`, `image`, `application`, ...
    pub fn top_level(&self) -> &str {
        self.0.split('/').next().unwrap_or_default()
    }
}

impl FromStr for ContentType {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Parameters are dropped, but not before the whole value is seen to be
        // plain visible text of a sane length.
        if s.len() > 255 || !s.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(DomainError::InvalidContentType(
                s.chars().take(80).collect(),
            ));
        }
        let essence = s
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let token = |t: &str| {
            !t.is_empty()
                && t.len() <= 127
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        match essence.split_once('/') {
            Some((kind, sub)) if token(kind) && token(sub) => Ok(Self(essence)),
            _ => Err(DomainError::InvalidContentType(
                s.chars().take(80).collect(),
            )),
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_refuse_paths_and_control_characters() {
        assert!("Holiday video (final).mp4".parse::<FileName>().is_ok());
        for bad in [
            "",
            "   ",
            "a/b.mp4",
            "..\\x",
            "a\nb",
            "a\0b",
            &"x".repeat(256),
            "..",
            ". .",
            "gpj.\u{202E}exe",
            "a\u{2067}b.pdf",
            "x\u{200F}.zip",
            "zero\u{200B}width.png",
        ] {
            assert!(bad.parse::<FileName>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn content_types_are_normalised() {
        let ct: ContentType = "Video/MP4; codecs=avc1".parse().unwrap();
        assert_eq!(ct.as_str(), "video/mp4");
        assert_eq!(ct.top_level(), "video");
        let long = format!("video/mp4; x={}", "a".repeat(250));
        for bad in [
            "video",
            "/mp4",
            "video/",
            "vi deo/mp4",
            "",
            "video/mp4\r\nx-injected: 1",
            "video/mp4; name=\u{202E}4pm.exe",
            &long,
        ] {
            assert!(bad.parse::<ContentType>().is_err(), "{bad:?} accepted");
        }
    }
}
