use crate::DomainError;

/// The smallest part S3 accepts, except for the last part of an upload.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The largest part S3 accepts.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// The most parts one multipart upload may have.
pub const MAX_PART_COUNT: u32 = 10_000;

/// A part number that exists in some upload's plan (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartNumber(u32);

impl PartNumber {
    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// How a file is cut into parts. Fixed at CreateUpload: every part but the last
/// is `part_size` bytes, so a part's length is known from its number alone and
/// the parts always add up to the declared size. The store does not enforce the
/// S3 limits (Garage accepts tiny parts), so they are enforced here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    size: u64,
    part_size: u64,
    part_count: u32,
}

impl PartPlan {
    /// Plans `size` bytes. An explicit `requested` part size must be within the S3
    /// bounds and fit in 10,000 parts; without one, `default_part_size` is used and
    /// grown when the file would otherwise need too many parts.
    pub fn new(
        size: u64,
        requested: Option<u64>,
        default_part_size: u64,
    ) -> Result<Self, DomainError> {
        if size == 0 {
            return Err(DomainError::EmptyFile);
        }
        let needed = size.div_ceil(u64::from(MAX_PART_COUNT)).max(MIN_PART_SIZE);
        let part_size = match requested {
            Some(p) => {
                if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&p) {
                    return Err(DomainError::PartSizeOutOfRange {
                        requested: p,
                        min: MIN_PART_SIZE,
                        max: MAX_PART_SIZE,
                    });
                }
                let parts = size.div_ceil(p);
                if parts > u64::from(MAX_PART_COUNT) {
                    return Err(DomainError::TooManyParts {
                        size,
                        part_size: p,
                        parts,
                        max: MAX_PART_COUNT,
                        needed,
                    });
                }
                p
            }
            None => default_part_size
                .clamp(MIN_PART_SIZE, MAX_PART_SIZE)
                .max(needed),
        };
        if part_size > MAX_PART_SIZE {
            // Only a file over 48.8 TiB gets here; S3 itself stops at 5 TiB.
            return Err(DomainError::PartSizeOutOfRange {
                requested: part_size,
                min: MIN_PART_SIZE,
                max: MAX_PART_SIZE,
            });
        }
        let part_count =
            u32::try_from(size.div_ceil(part_size)).map_err(|_| DomainError::TooManyParts {
                size,
                part_size,
                parts: size.div_ceil(part_size),
                max: MAX_PART_COUNT,
                needed,
            })?;
        Ok(Self {
            size,
            part_size,
            part_count,
        })
    }

    /// Rebuilds a plan stored earlier, without re-applying today's defaults.
    pub fn from_stored(size: u64, part_size: u64, part_count: u32) -> Option<Self> {
        let plan = Self {
            size,
            part_size,
            part_count,
        };
        (size > 0 && part_size > 0 && u64::from(part_count) == size.div_ceil(part_size))
            .then_some(plan)
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The length of every part but the last.
    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// How many parts.
    pub fn part_count(&self) -> u32 {
        self.part_count
    }

    /// Checks that `number` is in the plan.
    pub fn part_number(&self, number: u32) -> Result<PartNumber, DomainError> {
        if number == 0 || number > self.part_count {
            return Err(DomainError::PartNumberOutOfRange {
                number,
                count: self.part_count,
            });
        }
        Ok(PartNumber(number))
    }

    /// The exact length of part `number`.
    pub fn part_len(&self, number: PartNumber) -> u64 {
        if number.0 < self.part_count {
            self.part_size
        } else {
            self.size - u64::from(self.part_count - 1) * self.part_size
        }
    }

    /// Where part `number` starts in the file.
    pub fn part_offset(&self, number: PartNumber) -> u64 {
        u64::from(number.0 - 1) * self.part_size
    }

    /// Checks a part a client wants signed: its number is in the plan and its
    /// length is the planned one.
    pub fn check_part(&self, number: u32, length: u64) -> Result<PartNumber, DomainError> {
        let number = self.part_number(number)?;
        let expected = self.part_len(number);
        if length != expected {
            return Err(DomainError::PartLengthMismatch {
                number: number.0,
                expected,
                got: length,
            });
        }
        Ok(number)
    }

    /// All part numbers, in order.
    pub fn parts(&self) -> impl Iterator<Item = PartNumber> + use<> {
        (1..=self.part_count).map(PartNumber)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn three_hundred_mb_in_sixteen_mib_parts() {
        let plan = PartPlan::new(300_000_000, Some(16 * MIB), 16 * MIB).unwrap();
        assert_eq!(plan.part_count(), 18);
        let last = plan.part_number(18).unwrap();
        assert_eq!(plan.part_len(last), 300_000_000 - 17 * 16 * MIB);
        let total: u64 = plan.parts().map(|n| plan.part_len(n)).sum();
        assert_eq!(total, 300_000_000);
    }

    #[test]
    fn small_file_is_one_short_part() {
        let plan = PartPlan::new(68, None, 16 * MIB).unwrap();
        assert_eq!(plan.part_count(), 1);
        assert!(plan.check_part(1, 68).is_ok());
    }

    #[test]
    fn requested_part_size_must_respect_s3_bounds() {
        assert!(matches!(
            PartPlan::new(100 * MIB, Some(MIB), 16 * MIB),
            Err(DomainError::PartSizeOutOfRange { .. })
        ));
        assert!(matches!(
            PartPlan::new(100 * MIB, Some(6 * 1024 * MIB), 16 * MIB),
            Err(DomainError::PartSizeOutOfRange { .. })
        ));
    }

    #[test]
    fn requested_part_size_must_fit_ten_thousand_parts() {
        let err = PartPlan::new(60_000 * MIB, Some(5 * MIB), 16 * MIB).unwrap_err();
        assert!(
            matches!(err, DomainError::TooManyParts { parts: 12_000, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn default_part_size_grows_to_fit_ten_thousand_parts() {
        let plan = PartPlan::new(200_000 * MIB, None, 5 * MIB).unwrap();
        assert_eq!(plan.part_count(), MAX_PART_COUNT);
        assert_eq!(plan.part_size(), 20 * MIB);
    }

    #[test]
    fn parts_are_checked_by_number_and_exact_length() {
        let plan = PartPlan::new(40 * MIB + 5, Some(8 * MIB), 8 * MIB).unwrap();
        assert_eq!(plan.part_count(), 6);
        assert!(plan.check_part(1, 8 * MIB).is_ok());
        assert!(plan.check_part(6, 5).is_ok());
        assert!(matches!(
            plan.check_part(0, 8 * MIB),
            Err(DomainError::PartNumberOutOfRange { .. })
        ));
        assert!(matches!(
            plan.check_part(7, 5),
            Err(DomainError::PartNumberOutOfRange { .. })
        ));
        assert!(matches!(
            plan.check_part(2, 8 * MIB - 1),
            Err(DomainError::PartLengthMismatch { .. })
        ));
        assert!(matches!(
            plan.check_part(6, 8 * MIB),
            Err(DomainError::PartLengthMismatch { .. })
        ));
        assert_eq!(plan.part_offset(plan.part_number(3).unwrap()), 16 * MIB);
    }

    #[test]
    fn empty_file_is_refused() {
        assert_eq!(
            PartPlan::new(0, None, 16 * MIB),
            Err(DomainError::EmptyFile)
        );
    }

    #[test]
    fn stored_plan_must_be_consistent() {
        assert!(PartPlan::from_stored(100, 10, 10).is_some());
        assert!(PartPlan::from_stored(100, 10, 9).is_none());
    }
}
