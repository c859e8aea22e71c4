//! Where variables come from, what a bad one looks like, and the helpers that
//! read numbers and bounds with an error naming the variable.

use std::str::FromStr;

/// A configuration problem, naming the environment variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {name} is not set ({hint})")]
    Missing {
        /// The variable's name.
        name: &'static str,
        /// What the variable is for.
        hint: &'static str,
    },
    /// A variable is set but cannot be parsed.
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// The value found.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// Where to read variables from: the process environment, or a map in tests.
pub trait Source {
    /// The variable's value, if set and non-empty.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct Env;

impl Source for Env {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl<S: std::hash::BuildHasher> Source for std::collections::HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

pub(crate) const MIB: u64 = 1024 * 1024;
pub(crate) const GIB: u64 = 1024 * MIB;

/// How the example settings (`deploy/production/upload.env.example`) mark a secret
/// to replace; a value that still starts with it is refused.
pub const PLACEHOLDER: &str = "change-me";

/// A required secret: set, and not the example's placeholder. Errors never show it.
pub(crate) fn secret(
    src: &dyn Source,
    name: &'static str,
    hint: &'static str,
) -> Result<String, ConfigError> {
    let value = required(src, name, hint)?;
    if value.starts_with(PLACEHOLDER) {
        return Err(ConfigError::Invalid {
            name,
            value: "<redacted>".into(),
            reason:
                "still holds the example placeholder from upload.env.example; set the real secret"
                    .into(),
        });
    }
    Ok(value)
}

/// `url` with the passwords it may carry replaced, for logs and `Debug`: the one
/// in its user info and any `password=` or `sslpassword=` parameter (libpq takes
/// both).
///
/// The user info is read as libpq reads it, up to the first `@` before any `/`,
/// so a password may hold a `?`. Parameters are redacted wherever a `?` or `&`
/// starts one, not only after the first `?`: whatever the URL's shape, no
/// password is shown.
pub(crate) fn without_password(url: &str) -> String {
    let Some(scheme) = url.find("://") else {
        return without_password_parameters(url);
    };
    let (head, after) = url.split_at(scheme + 3);
    let userinfo = after
        .find(['@', '/'])
        .filter(|&at| after.as_bytes()[at] == b'@')
        .and_then(|at| Some((after[..at].split_once(':')?.0, &after[at..])));
    match userinfo {
        Some((user, rest)) => format!(
            "{head}{user}:<redacted>{}",
            without_password_parameters(rest)
        ),
        None => format!("{head}{}", without_password_parameters(after)),
    }
}

/// `text` with the value of every `password=` or `sslpassword=` that follows a
/// `?` or an `&` replaced.
fn without_password_parameters(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for (n, segment) in text.split_inclusive(['?', '&']).enumerate() {
        let (body, delimiter) = match segment.strip_suffix(['?', '&']) {
            Some(body) => (body, &segment[body.len()..]),
            None => (segment, ""),
        };
        match body.split_once('=') {
            Some((key, _))
                if n > 0
                    && (key.eq_ignore_ascii_case("password")
                        || key.eq_ignore_ascii_case("sslpassword")) =>
            {
                shown.push_str(key);
                shown.push_str("=<redacted>");
            }
            _ => shown.push_str(body),
        }
        shown.push_str(delimiter);
    }
    shown
}

pub(crate) fn required(
    src: &dyn Source,
    name: &'static str,
    hint: &'static str,
) -> Result<String, ConfigError> {
    src.get(name).ok_or(ConfigError::Missing { name, hint })
}

pub(crate) fn parsed<T>(src: &dyn Source, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match src.get(name) {
        None => Ok(default),
        Some(value) => value.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
            value,
        }),
    }
}

/// `name` parsed when it is set; None when it is not.
pub(crate) fn optional<T>(src: &dyn Source, name: &'static str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    src.get(name)
        .map(|value| {
            value.parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
                value,
            })
        })
        .transpose()
}

pub(crate) fn positive(name: &'static str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 {
        return Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            reason: "must be greater than zero".into(),
        });
    }
    Ok(value)
}

pub(crate) fn at_most(name: &'static str, value: u64, max: u64) -> Result<u64, ConfigError> {
    if value > max {
        return Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            reason: format!("must be at most {max}"),
        });
    }
    Ok(value)
}

pub(crate) fn between(
    name: &'static str,
    value: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    if value < min {
        return Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            reason: format!("must be at least {min}"),
        });
    }
    at_most(name, value, max)
}
