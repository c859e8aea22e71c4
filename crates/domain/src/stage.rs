use std::str::FromStr;

/// A step of an upload's life with its own progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Parts travelling from the client to the store.
    Upload,
    /// The malware scan.
    Scan,
    /// Size, MD5, SHA-256 and type sniffing.
    Hash,
    /// Media facts.
    Metadata,
    /// Thumbnails and clips.
    Preview,
}

/// Whether a stage has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageStatus {
    /// Not started.
    Pending,
    /// Under way.
    Running,
    /// Finished.
    Done,
    /// Stopped by an error.
    Failed,
    /// Not needed for this file.
    Skipped,
}

macro_rules! named {
    ($ty:ty { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The name stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
        }

        impl FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Self::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($ty))),
                }
            }
        }
    };
}

named!(Stage { Upload => "upload", Scan => "scan", Hash => "hash", Metadata => "metadata", Preview => "preview" });
named!(StageStatus { Pending => "pending", Running => "running", Done => "done", Failed => "failed", Skipped => "skipped" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [
            Stage::Upload,
            Stage::Scan,
            Stage::Hash,
            Stage::Metadata,
            Stage::Preview,
        ] {
            assert_eq!(s.as_str().parse::<Stage>().unwrap(), s);
        }
        assert_eq!("done".parse::<StageStatus>().unwrap(), StageStatus::Done);
        assert!("finished".parse::<StageStatus>().is_err());
    }
}
